"""The Stripe connector: PaymentIntents through Stripe's official SDK
(`connector`), its statuses and errors read in one place (`mapping`), its
webhooks (`webhooks`) and its balance transactions as a settlement report
(`settlement`)."""
