"""The storage layer's errors; callers never see psycopg's."""

from __future__ import annotations


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    """Postgres could not be reached or dropped the connection mid-request."""
