"""The Stripe connector: PaymentIntents through Stripe's official SDK
(`connector`, reaching Stripe through `client`), its statuses and errors read
in one place (`mapping`), its webhooks (`webhooks`), its balance transactions
as a settlement report (`settlement`), and where localstripe, the emulator it
is tested against, departs from Stripe (`departures`)."""
