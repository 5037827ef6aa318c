"""The storage layer's errors; callers never see psycopg's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg_pool import PoolTimeout


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    """Postgres could not be reached or dropped the connection mid-request."""


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """psycopg's errors at the store's edge: Postgres out of reach (or a pool
    with no connection to lend in time) is `StoreUnavailable`."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as error:
        raise StoreUnavailable(str(error)) from error
