"""The signed_in console at /console: server-rendered pages over the same
store as the API, signed in with an API key that has `payments:read`."""

from gateway.console.routes import CONSOLE

__all__ = ["CONSOLE"]
