"""Merchant webhooks out: the consumer group on `events` and the sender.

The fan-out reads the stream in the consumer group `merchant-webhooks`
(`XREADGROUP`), writes one delivery per subscribed endpoint into Postgres
(unique on endpoint and event: an event read twice is delivered once), and
only then acknowledges (`XACK`). Entries a dead consumer left pending are
taken over with `XAUTOCLAIM` once idle long enough.

The sender posts due deliveries, signed the Standard Webhooks way with the
endpoint's secret (and its previous one during a rotation's grace), and
retries failures on the schedule from the settings, with jitter; after the
last try a delivery is dead, kept for replay. A 410 disables the endpoint.
Requests go only to public addresses unless private ones are allowed, and connect
only to the address that was checked (`actors.pinned`).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import httpx
import orjson
import redis
from psycopg import Connection
from psycopg_pool import ConnectionPool
from standardwebhooks import Webhook

from actors.pinned import Refused
from actors.pinned import Resolver
from actors.pinned import pin
from actors.pinned import post_pinned
from actors.pinned import system_resolver
from actors.relay import STREAM
from payments.events import subscribes
from store.audit import acting
from store.audit import record
from store.audit import system
from store.db import connection
from store.errors import StoreUnavailable
from store.outbox import mark_fanned_out
from store.webhook_deliveries import DeliveryRow
from store.webhook_deliveries import NewDelivery
from store.webhook_deliveries import insert_deliveries
from store.webhook_deliveries import lease_due
from store.webhook_deliveries import record_delivered
from store.webhook_deliveries import record_failure
from store.webhook_endpoints import EndpointRow
from store.webhook_endpoints import disable_endpoint
from store.webhook_endpoints import endpoints_by_id
from store.webhook_endpoints import subscribed_endpoints
from telemetry.metrics import webhook_dead_letters
from telemetry.metrics import webhook_delivery_failures

logger = logging.getLogger("paystream.webhooks")

GROUP = "merchant-webhooks"
# A consumer that holds entries this long without acknowledging them is dead.
CLAIM_IDLE_MS = 30_000
READ_COUNT = 100


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    schedule: Sequence[timedelta]
    timeout: float
    allow_private: bool
    # ±20 % around each delay, so endpoints that failed together do not
    # all come back at the same second.
    jitter: float = 0.2
    # How endpoint names become addresses (the system's DNS; tests answer
    # themselves). Asked once per attempt: the connection goes where it said.
    resolve: Resolver = system_resolver


# --- the fan-out: stream entries to deliveries ----------------------------------


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def fan_out(
    pool: ConnectionPool[Any], client: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]]
) -> int:
    """Deliveries for these stream entries, then XACK. Returns how many new."""
    if not entries:
        return 0
    events = [_event(fields) for _, fields in entries]
    with connection(pool) as conn, conn.transaction():
        endpoints = subscribed_endpoints(conn, sorted({e["merchant_id"] for e in events}))
        deliveries = [
            NewDelivery(
                endpoint.id,
                event["merchant_id"],
                event["event_id"],
                event["type"],
                event["payload"],
            )
            for event in events
            for endpoint in endpoints
            if endpoint.merchant_id == event["merchant_id"]
            and subscribes(endpoint.event_types, event["type"])
        ]
        created = insert_deliveries(conn, deliveries)
        mark_fanned_out(conn, [event["event_id"] for event in events])
    client.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries])
    return created


def _event(fields: dict[bytes, bytes]) -> dict[str, Any]:
    return {
        "event_id": fields[b"event_id"].decode(),
        "merchant_id": fields[b"merchant_id"].decode(),
        "type": fields[b"type"].decode(),
        "payload": orjson.loads(fields[b"payload"]),
    }


def consume_once(
    pool: ConnectionPool[Any], client: redis.Redis, consumer: str, *, block_ms: int
) -> int:
    """Take over what dead consumers left, then read what is new."""
    handled, start = 0, "0-0"
    while True:
        reply: Any = client.xautoclaim(
            STREAM, GROUP, consumer, CLAIM_IDLE_MS, start, count=READ_COUNT
        )
        next_start, claimed = reply[0], reply[1]
        # An entry trimmed away meanwhile comes back without fields: nothing to do.
        handled += fan_out(pool, client, [(entry_id, f) for entry_id, f in claimed if f])
        start = next_start.decode() if isinstance(next_start, bytes) else str(next_start)
        if start == "0-0":
            break
    response: Any = client.xreadgroup(
        GROUP, consumer, {STREAM: ">"}, count=READ_COUNT, block=block_ms
    )
    for _, entries in response or []:
        handled += fan_out(pool, client, entries)
    return handled


# --- the sender: deliveries to endpoints ---------------------------------------


def send_due(
    pool: ConnectionPool[Any],
    policy: DeliveryPolicy,
    http: httpx.Client,
    executor: ThreadPoolExecutor,
    *,
    limit: int = 50,
) -> int:
    lease = timedelta(seconds=policy.timeout + 5)
    with connection(pool) as conn:
        due = lease_due(conn, limit=limit, lease=lease)
        endpoints = endpoints_by_id(conn, sorted({d.endpoint_id for d in due}))
    outcomes = list(
        executor.map(lambda d: _attempt(d, endpoints[d.endpoint_id], policy, http), due)
    )
    retries = [_retry_in(d, outcome, policy) for d, outcome in zip(due, outcomes, strict=True)]
    with acting(pool, system("webhooks")) as conn:
        for delivery, outcome, retry_in in zip(due, outcomes, retries, strict=True):
            _record(conn, delivery, outcome, retry_in)
    # Counted once the outcomes are written for good.
    for outcome, retry_in in zip(outcomes, retries, strict=True):
        if outcome.error is not None:
            webhook_delivery_failures.labels(_reason(outcome)).inc()
            if retry_in is None:
                webhook_dead_letters.inc()
    return len(due)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None  # None: delivered
    gone: bool = False
    final: bool = False  # no retry can help


def _attempt(
    delivery: DeliveryRow, endpoint: EndpointRow, policy: DeliveryPolicy, http: httpx.Client
) -> _Outcome:
    if endpoint.deleted_at is not None:
        return _Outcome(None, "the endpoint was deleted", final=True)
    if endpoint.status != "enabled":
        return _Outcome(None, f"the endpoint is disabled: {endpoint.disabled_reason}", final=True)
    try:
        target = pin(endpoint.url, allow_private=policy.allow_private, resolve=policy.resolve)
    except Refused as refused:
        return _Outcome(None, str(refused))
    now = datetime.now(UTC)
    body = orjson.dumps(delivery.payload).decode()
    signatures = " ".join(
        Webhook(s).sign(delivery.event_id, now, body) for s in endpoint.signing_secrets(now)
    )
    headers = {
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "paystream-webhooks/1",
    }
    try:
        response = post_pinned(http, target, content=body, headers=headers, timeout=policy.timeout)
    except httpx.HTTPError as error:
        return _Outcome(None, f"{type(error).__name__}: {error}"[:300])
    if 200 <= response.status_code < 300:
        return _Outcome(response.status_code, None)
    if response.status_code == 410:
        return _Outcome(410, "the endpoint answered 410 Gone", gone=True, final=True)
    return _Outcome(response.status_code, f"the endpoint answered {response.status_code}")


def _reason(outcome: _Outcome) -> str:
    """A failure's kind, for the metrics: few values, never a URL."""
    if outcome.gone:
        return "gone"
    if outcome.status is not None:
        return f"http_{outcome.status}"
    return "endpoint_unusable" if outcome.final else "network_or_address"


def _retry_in(delivery: DeliveryRow, outcome: _Outcome, policy: DeliveryPolicy) -> timedelta | None:
    """When to try a failed delivery again; None: never (a dead letter)."""
    if outcome.final or delivery.attempts >= len(policy.schedule):
        return None
    delay = policy.schedule[delivery.attempts].total_seconds()
    return timedelta(seconds=delay * random.uniform(1 - policy.jitter, 1 + policy.jitter))


def _record(
    conn: Connection[Any], delivery: DeliveryRow, outcome: _Outcome, retry_in: timedelta | None
) -> None:
    if outcome.error is None:
        assert outcome.status is not None
        record_delivered(conn, delivery.id, outcome.status)
        return
    if outcome.gone:
        disable_endpoint(conn, delivery.endpoint_id, "answered 410 Gone")
        record(
            conn,
            merchant_id=delivery.merchant_id,
            action="webhook_endpoint.disabled",
            object_id=delivery.endpoint_id,
            after={"status": "disabled", "reason": "answered 410 Gone"},
        )
        logger.warning("endpoint %s answered 410 and is disabled", delivery.endpoint_id)
    record_failure(conn, delivery.id, status=outcome.status, error=outcome.error, retry_in=retry_in)
    if retry_in is None:
        record(
            conn,
            merchant_id=delivery.merchant_id,
            action="webhook_delivery.dead",
            object_id=delivery.id,
            after={
                "eventId": delivery.event_id,
                "attempts": delivery.attempts + 1,
                "lastError": outcome.error,
            },
        )


# --- the process -------------------------------------------------------------------


def run(
    pool: ConnectionPool[Any],
    client: redis.Redis,
    policy: DeliveryPolicy,
    *,
    stop: threading.Event,
    senders: int = 16,
) -> None:
    ensure_group(client)
    consumer = f"consumer-{uuid.uuid4().hex[:12]}"
    fan_out_thread = threading.Thread(
        target=_fan_out_forever, args=(pool, client, consumer, stop), name="fan-out", daemon=True
    )
    fan_out_thread.start()
    logger.info("webhook delivery started as %s", consumer)
    with httpx.Client() as http, ThreadPoolExecutor(senders) as executor:
        while not stop.is_set():
            try:
                sent = send_due(pool, policy, http, executor, limit=senders * 4)
            except StoreUnavailable as error:
                logger.warning("sender paused: %s", error)
                sent = 0
            if not sent:
                stop.wait(0.1)
    fan_out_thread.join(5)


def _fan_out_forever(
    pool: ConnectionPool[Any], client: redis.Redis, consumer: str, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            consume_once(pool, client, consumer, block_ms=1000)
        except redis.ResponseError as error:
            if "NOGROUP" in str(error):  # the stream was flushed: make the group again
                ensure_group(client)
                continue
            logger.warning("fan-out paused: %s", error)
            stop.wait(1.0)
        except (redis.RedisError, StoreUnavailable) as error:
            logger.warning("fan-out paused: %s", error)
            stop.wait(1.0)
