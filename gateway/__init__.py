"""The merchant-facing HTTP API (Starlette): payments, auth, idempotency,
problem+json errors and the OpenAPI document."""
