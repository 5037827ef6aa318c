"""Wiring: real adapters into the gateway, the actors and the simulator."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from dramatiq.middleware import Retries
from dramatiq.middleware import default_middleware
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.types import GatewayConfig
from payments.card_testing import CardTestingPolicy
from paystream.connectors import build_connectors
from paystream.connectors import configured_psps
from paystream.connectors import configured_routing
from paystream.settings import Settings
from paystream.settings import require_secret
from paystream.settings import schedule_seconds
from psp.breaker import CircuitBreaker
from psp.breaker import breaker_states
from psp.simulator.app import create_app as create_simulator_app
from psp.simulator.knobs import knobs_at_start
from psp.simulator.service import SimulatorConfig
from store.errors import StoreUnavailable
from store.pool import open_pool
from telemetry import tracing
from telemetry.message_context import MessageContext
from telemetry.metrics import MULTIPROCESS_DIR
from telemetry.metrics import serve_metrics
from telemetry.tracing import configure_tracing

# The processes that enqueue actors but never call a PSP themselves.
_NO_PSP_CALLS = frozenset({"relay", "webhooks"})


def configure_actors(settings: Settings, role: str = "worker") -> None:
    """Set the broker, then register the actors on it, then tell them how to
    build their runtime (lazily, in each worker process). Every process that
    runs or enqueues actors calls this once, before importing `actors`."""
    # Dramatiq's defaults (20 tries from 15 s to 7 days) suit email, not
    # payments: one policy for every actor, from the settings.
    retries = Retries(
        max_retries=settings.retry_max_attempts,
        min_backoff=settings.retry_min_backoff_ms,
        max_backoff=settings.retry_max_backoff_ms,
        retry_when=_retry_when(settings.retry_max_attempts),
    )
    middleware = [retries if m is Retries else m() for m in default_middleware]
    # The request id, payment id and trace travel with each message.
    middleware.append(MessageContext())
    configure_tracing(f"paystream-{role}", enabled=settings.tracing)
    if os.environ.get(MULTIPROCESS_DIR):
        middleware.append(_prometheus_middleware())
    # A PSP named that paystream has no connector for, or without its
    # settings, stops the start, not a message; the relay and the webhook
    # deliverer never call a PSP and need none of its settings.
    if role not in _NO_PSP_CALLS:
        configured_psps(settings)
    dramatiq.set_broker(RedisBroker(url=settings.redis_url, middleware=middleware))
    import actors  # noqa: F401  (registers every actor with the broker above)
    from actors.card_testing import CardTestingCounter
    from actors.runtime import Runtime
    from actors.runtime import install

    def build_runtime() -> Runtime:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0)
        connectors = build_connectors(settings)
        return Runtime(
            pool=open_pool(settings.database_url, max_size=settings.db_pool_max),
            connectors=connectors,
            breakers={name: circuit_breaker(settings, client, name) for name in connectors.names()},
            card_testing=CardTestingCounter(client, card_testing_policy(settings)),
            action_expires_in=timedelta(seconds=settings.action_expires_seconds),
        )

    install(build_runtime)


def _prometheus_middleware() -> Middleware:
    """Dramatiq's own metrics (messages, errors, retries, durations by actor),
    written where every paystream process writes its metrics; the gateway's
    /metrics serves them."""
    os.environ.setdefault("dramatiq_prom_db", os.environ[MULTIPROCESS_DIR])
    from dramatiq.middleware.prometheus import Prometheus

    class SharedPrometheus(Prometheus):
        @property
        def forks(self) -> list[Callable[[], int]]:
            # Its own HTTP server only where a port is set for it (a worker
            # in a container of its own); otherwise the gateway serves these.
            exported: list[Callable[[], int]] = super().forks
            return exported if "dramatiq_prom_port" in os.environ else []

    middleware: Middleware = SharedPrometheus()
    return middleware


def _retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """Retry only what an actor asks to retry (`actors.errors.TryAgain`, a
    Dramatiq `Retry`) and a lost database connection: a bug fails loudly and
    its operation waits for the janitor."""

    def retry_when(retries: int, error: BaseException) -> bool:
        # A database that dropped the connection will take the next one.
        retryable = isinstance(error, dramatiq.Retry | StoreUnavailable)
        return retryable and retries < max_retries

    return retry_when


def card_testing_policy(settings: Settings) -> CardTestingPolicy:
    return CardTestingPolicy(
        window=settings.card_testing_window_seconds,
        min_attempts=settings.card_testing_min_attempts,
        decline_ratio=settings.card_testing_decline_ratio,
    )


def circuit_breaker(settings: Settings, client: redis.Redis, psp: str) -> CircuitBreaker:
    return CircuitBreaker(
        client,
        psp,
        threshold=settings.breaker_threshold,
        open_seconds=settings.breaker_open_seconds,
    )


def gateway_app(settings: Settings) -> Starlette:
    configure_actors(settings, role="gateway")
    from actors.dispatch import AsyncDispatcher

    config = GatewayConfig(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        key_pepper=require_secret(settings.key_pepper, "key_pepper").encode(),
        idempotency_retention=timedelta(seconds=settings.idempotency_retention_seconds),
        db_pool_max=settings.db_pool_max,
        connectors=build_connectors(settings),
        routing=configured_routing(settings),
        webhooks_allow_private=settings.webhooks_allow_private,
        webhook_secret_grace=timedelta(seconds=settings.webhook_secret_grace_seconds),
        rate_limit_per_second=settings.rate_limit_per_second,
        hsts=bool(settings.tls_cert_file),
        card_testing=card_testing_policy(settings),
        metrics_token=settings.metrics_token.get_secret_value() or None,
    )
    app = create_app(config, AsyncDispatcher, breaker_states)
    if tracing.enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app.add_middleware(OpenTelemetryMiddleware)
    return app


def simulator_app(settings: Settings) -> Starlette:
    """The PSP simulator, its fault knobs at start from the settings (PAYSTREAM_SIM_*)."""
    faults, webhooks = knobs_at_start(settings.sim)
    webhooks.url = settings.simulator_webhook_url
    webhooks.secret = settings.simulator_webhook_secret.get_secret_value() or None
    return create_simulator_app(
        SimulatorConfig(
            book_path=settings.simulator_book,
            api_key=require_secret(settings.psp_api_key, "psp_api_key"),
            faults=faults,
            webhooks=webhooks,
            ca_file=settings.simulator_ca_file,
        )
    )


# --- the long-running processes besides the gateway and the workers -------------


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: a process's loop ends at its next turn."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return stop


def run_janitor(settings: Settings) -> None:
    """Re-drive stalled PSP operations and callbacks from Postgres until stopped."""
    configure_actors(settings, role="janitor")
    serve_metrics(settings.metrics_port)
    # Actor modules bind to the broker current when they are imported: after it is set.
    from actors.authentication import check_authentication
    from actors.janitor import JanitorPolicy
    from actors.janitor import Nudges
    from actors.janitor import run
    from actors.operations import drive_operation
    from actors.psp_webhooks import apply_psp_webhook

    policy = JanitorPolicy(
        idle=timedelta(seconds=settings.janitor_idle_seconds),
        schedule=[timedelta(seconds=s) for s in schedule_seconds(settings.janitor_schedule)],
    )
    nudges = Nudges(
        operation=lambda operation_id: drive_operation.send(operation_id, nudged_by="janitor"),
        webhook=apply_psp_webhook.send,
        authentication=check_authentication.send,
    )
    stop = stop_on_signals()
    pool = open_pool(settings.database_url, max_size=2)
    try:
        run(pool, policy, nudges, interval=settings.janitor_interval_seconds, stop=stop)
    finally:
        pool.close()


def run_relay(settings: Settings) -> None:
    """Publish outbox events to the Redis Stream until stopped."""
    configure_actors(settings, role="relay")
    serve_metrics(settings.metrics_port)
    from actors.relay import run

    stop = stop_on_signals()
    pool = open_pool(settings.database_url, max_size=2)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        run(pool, client, stop=stop)
    finally:
        client.close()
        pool.close()


def run_webhook_delivery(settings: Settings) -> None:
    """Fan events out to merchants' endpoints and deliver them until stopped."""
    configure_actors(settings, role="webhooks")
    serve_metrics(settings.metrics_port)
    from actors.webhook_delivery import DeliveryPolicy
    from actors.webhook_delivery import run

    policy = DeliveryPolicy(
        schedule=[timedelta(seconds=d) for d in schedule_seconds(settings.webhook_retry_schedule)],
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.webhooks_allow_private,
    )
    stop = stop_on_signals()
    pool = open_pool(settings.database_url, max_size=4)
    # Blocking stream reads wait up to a second; the socket must wait longer.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    try:
        run(pool, client, policy, stop=stop)
    finally:
        client.close()
        pool.close()
