"""What the actors work with (Postgres pool, PSP client, circuit breaker),
built once per worker process on first use: nothing connects at import time,
and forked worker processes each get their own connections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from actors.card_testing import CardTestingCounter
from psp.breaker import CircuitBreaker
from psp.protocol import PaymentServiceProvider


@dataclass(frozen=True, slots=True)
class Runtime:
    pool: ConnectionPool[Any]
    psp: PaymentServiceProvider
    breaker: CircuitBreaker
    card_testing: CardTestingCounter


_factory: Callable[[], Runtime] | None = None
_runtime: Runtime | None = None
_lock = threading.Lock()


def install(factory: Callable[[], Runtime]) -> None:
    """Called by the composition root before the worker starts."""
    global _factory, _runtime
    with _lock:
        _factory, _runtime = factory, None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                if _factory is None:
                    raise RuntimeError("actors.runtime.install() was not called")
                _runtime = _factory()
    return _runtime
