"""What the actors work with (Postgres pool, the PSP connectors and a circuit
breaker for each), built once per worker process on first use: nothing
connects at import time, and forked worker processes each get their own
connections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from actors.card_testing import CardTestingCounter
from psp.breaker import CircuitBreaker
from psp.protocol import Connector
from psp.protocol import Connectors


@dataclass(frozen=True, slots=True)
class Runtime:
    pool: ConnectionPool[Any]
    connectors: Connectors
    # One per connector, by its name: one PSP's outage stops no other's calls.
    breakers: Mapping[str, CircuitBreaker]
    card_testing: CardTestingCounter
    # How long a payment waits for its customer to authenticate (3-D Secure):
    # the setting `PAYSTREAM_ACTION_EXPIRES_SECONDS`.
    action_expires_in: timedelta = timedelta(minutes=15)

    def psp(self, name: str) -> tuple[Connector, CircuitBreaker]:
        """A PSP's connector and its breaker; UnknownConnector if not configured here."""
        return self.connectors[name], self.breakers[name]


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
