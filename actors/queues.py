"""Queue and actor names, shared by the actors and the enqueuers."""

PAYMENTS_QUEUE = "payments"
DRIVE_OPERATION = "drive_operation"
WEBHOOKS_QUEUE = "psp_webhooks"
APPLY_PSP_WEBHOOK = "apply_psp_webhook"
RECONCILE = "reconcile"
CHECK_AUTHENTICATION = "check_authentication"
