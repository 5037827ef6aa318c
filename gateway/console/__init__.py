"""The console at /console: server-rendered pages over the same store as the
API, signed in with a merchant's API key that has `payments:read` (that
merchant's pages) or an operator's that has `reconciliation` (reconciliation
runs and any merchant's ledger)."""

from gateway.console.routes import CONSOLE

__all__ = ["CONSOLE"]
