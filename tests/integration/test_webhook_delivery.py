"""Merchant webhooks out: the consumer group, the sender, retries, dead
letters, 410s, secret rotation and the SSRF guard, against real Redis and
Postgres, and a receiver that verifies with the official standardwebhooks library."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import redis
import trustme
from psycopg_pool import ConnectionPool
from standardwebhooks import Webhook

from actors import webhook_delivery
from actors.relay import STREAM
from actors.relay import publish_batch
from actors.relay import republish_lost
from actors.relay import trim_acknowledged
from actors.webhook_delivery import DeliveryPolicy
from actors.webhook_delivery import consume_once
from actors.webhook_delivery import ensure_group
from actors.webhook_delivery import send_due
from drill.receiver import Receiver
from drill.receiver import serving_receiver
from payments.webhooks import new_webhook_secret
from store.pool import open_pool
from tests.conftest import Merchant

FAST = DeliveryPolicy(
    schedule=[timedelta(milliseconds=50), timedelta(milliseconds=100)],
    timeout=2,
    allow_private=True,
)


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = open_pool(database_url, max_size=4)
    yield pool
    pool.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving_receiver() as running:
        yield running


@pytest.fixture
def stream(redis_client: redis.Redis, pool: ConnectionPool) -> redis.Redis:
    ensure_group(redis_client)
    return redis_client


def endpoint(
    db: psycopg.Connection, merchant: Merchant, url: str, event_types: list[str] | None = None
) -> tuple[str, str]:
    endpoint_id, secret = f"we_{uuid.uuid4().hex}", new_webhook_secret()
    db.execute(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, event_types, secret) VALUES (%s, %s, %s, %s, %s)",
        (endpoint_id, merchant.id, url, event_types or ["*"], secret),
    )
    return endpoint_id, secret


def publish(
    db: psycopg.Connection,
    pool: ConnectionPool,
    client: redis.Redis,
    merchant: Merchant,
    event_type: str = "payment.captured",
) -> str:
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = {
        "id": event_id,
        "type": event_type,
        "createdAt": "2026-11-24T10:00:00.000Z",
        "data": {"paymentId": "pay_1"},
    }
    db.execute(
        "INSERT INTO outbox (event_id, merchant_id, event_type, payload) VALUES (%s, %s, %s, %s)",
        (event_id, merchant.id, event_type, psycopg.types.json.Jsonb(payload)),
    )
    while publish_batch(pool, client, 500):
        pass
    return event_id


def settle_other_tests_events(db: psycopg.Connection) -> None:
    """Events other tests left unread in this shared database are not ours to count."""
    db.execute(
        "UPDATE outbox SET published_at = coalesce(published_at, now()), fanned_out_at = now()"
        " WHERE fanned_out_at IS NULL"
    )


def deliveries(db: psycopg.Connection, endpoint_id: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in db.execute(
            "SELECT event_id, status, attempts, last_status FROM webhook_deliveries WHERE endpoint_id = %s",
            (endpoint_id,),
        ).fetchall()
    ]


def send_until_quiet(
    pool: ConnectionPool,
    policy: DeliveryPolicy = FAST,
    seconds: float = 3,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Send whatever is due, again and again, for `seconds` (retries included)."""
    from concurrent.futures import ThreadPoolExecutor

    deadline = time.monotonic() + seconds
    with httpx.Client(verify=verify) as http, ThreadPoolExecutor(4) as executor:
        while time.monotonic() < deadline:
            send_due(pool, policy, http, executor)
            time.sleep(0.02)


def test_an_event_is_fanned_out_to_each_subscribed_endpoint_once_and_acknowledged(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    everything, _ = endpoint(db, merchant, receiver.url)
    refunds_only, _ = endpoint(db, merchant, receiver.url, ["refund.succeeded"])
    event_id = publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    consume_once(pool, stream, "c1", block_ms=100)
    assert deliveries(db, everything) == [(event_id, "pending", 0, None)]
    assert deliveries(db, refunds_only) == []
    assert stream.xpending(STREAM, webhook_delivery.GROUP)["pending"] == 0


def test_the_same_event_read_twice_is_one_delivery(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    event_id = publish(db, pool, stream, merchant)
    entries = [(e, f) for e, f in stream.xrange(STREAM) if f[b"event_id"].decode() == event_id]
    webhook_delivery.fan_out(pool, stream, entries)
    webhook_delivery.fan_out(pool, stream, entries)  # a relay's duplicate, or a redelivery
    assert len(deliveries(db, endpoint_id)) == 1


def test_entries_left_pending_by_a_dead_consumer_are_claimed_and_delivered_by_another(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    event_id = publish(db, pool, stream, merchant)
    # The dead consumer read the entry and never acknowledged it.
    stream.xreadgroup(webhook_delivery.GROUP, "dead-consumer", {STREAM: ">"}, count=100)
    assert stream.xpending(STREAM, webhook_delivery.GROUP)["pending"] >= 1
    monkeypatch.setattr(webhook_delivery, "CLAIM_IDLE_MS", 50)
    time.sleep(0.1)
    consume_once(pool, stream, "survivor", block_ms=100)
    assert [d[0] for d in deliveries(db, endpoint_id)] == [event_id]
    assert stream.xpending(STREAM, webhook_delivery.GROUP)["pending"] == 0


def test_a_blocking_read_wakes_when_an_event_arrives(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    consume_once(pool, stream, "c1", block_ms=50)  # nothing new: returns after the block
    woke_at: list[float] = []

    def consumer() -> None:
        consume_once(pool, stream, "c1", block_ms=5000)
        woke_at.append(time.monotonic())

    thread = threading.Thread(target=consumer)
    thread.start()
    time.sleep(0.5)
    published_at = time.monotonic()
    publish(db, pool, stream, merchant)
    thread.join(10)
    assert woke_at and published_at <= woke_at[0] < published_at + 2
    assert len(deliveries(db, endpoint_id)) == 1


def test_a_delivery_is_signed_the_standard_webhooks_way(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    endpoint_id, secret = endpoint(db, merchant, receiver.url)
    event_id = publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    send_until_quiet(pool, seconds=0.5)
    [delivery] = receiver.wait_for(1)
    payload = Webhook(secret).verify(delivery.body, delivery.headers)  # the official library
    assert payload["id"] == event_id and delivery.headers["webhook-id"] == event_id
    assert deliveries(db, endpoint_id) == [(event_id, "delivered", 1, 204)]


def test_a_failing_endpoint_is_retried_until_it_answers(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    receiver.fail_first = 2
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    event_id = publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    send_until_quiet(pool, seconds=2)
    assert receiver.tries[event_id] == 3
    assert deliveries(db, endpoint_id) == [(event_id, "delivered", 3, 204)]


def test_after_the_last_try_a_delivery_is_dead_and_a_replay_sends_it_again(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    receiver.fail_first = 100
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    event_id = publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    send_until_quiet(pool, seconds=1.5)
    assert deliveries(db, endpoint_id) == [(event_id, "dead", 3, 500)]
    receiver.fail_first = 0
    db.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now()"
        " WHERE endpoint_id = %s",
        (endpoint_id,),
    )
    send_until_quiet(pool, seconds=0.5)
    assert deliveries(db, endpoint_id)[0][1] == "delivered"


def test_a_410_disables_the_endpoint(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    receiver.gone = True
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    first = publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    send_until_quiet(pool, seconds=0.5)
    status = db.execute(
        "SELECT status, disabled_reason FROM webhook_endpoints WHERE id = %s", (endpoint_id,)
    ).fetchone()
    assert status == ("disabled", "answered 410 Gone")
    assert deliveries(db, endpoint_id) == [(first, "dead", 1, 410)]
    publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    assert len(deliveries(db, endpoint_id)) == 1  # a disabled endpoint gets nothing new


def test_during_a_rotation_deliveries_carry_both_signatures(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    endpoint_id, old = endpoint(db, merchant, receiver.url)
    new = new_webhook_secret()
    db.execute(
        "UPDATE webhook_endpoints SET previous_secret = secret, secret = %s,"
        " previous_retires_at = now() + interval '1 hour' WHERE id = %s",
        (new, endpoint_id),
    )
    publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    send_until_quiet(pool, seconds=0.5)
    [delivery] = receiver.wait_for(1)
    for secret in (old, new):
        Webhook(secret).verify(delivery.body, delivery.headers)
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2


def test_without_permission_private_addresses_get_nothing(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    strict = DeliveryPolicy(schedule=[timedelta(milliseconds=20)], timeout=2, allow_private=False)
    send_until_quiet(pool, strict, seconds=0.5)
    [(_, status, attempts, _)] = deliveries(db, endpoint_id)
    error = db.execute(
        "SELECT last_error FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint_id,)
    ).fetchone()
    assert (status, attempts) == ("dead", 2) and receiver.deliveries == []
    assert (
        error is not None and "https" in error[0]
    )  # http:// to loopback: refused before resolving


def test_events_lost_with_a_redis_flush_are_published_again_and_delivered(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    settle_other_tests_events(db)
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    taken_in = publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    lost = publish(db, pool, stream, merchant)  # published, not yet fanned out...
    stream.flushall()  # ... when Redis forgets everything
    ensure_group(stream)  # what the webhooks process does on NOGROUP
    assert republish_lost(pool, stream, older_than=timedelta(0)) == 1
    assert (
        republish_lost(pool, stream, older_than=timedelta(0)) == 0
    )  # not yet fanned out, but in the stream
    while publish_batch(pool, stream, 500):
        pass
    consume_once(pool, stream, "c1", block_ms=100)
    assert sorted(d[0] for d in deliveries(db, endpoint_id)) == sorted([taken_in, lost])


def test_an_event_read_by_the_fan_out_but_not_yet_taken_in_is_not_copied_however_young(
    pool: ConnectionPool, db: psycopg.Connection, merchant: Merchant, stream: redis.Redis
) -> None:
    settle_other_tests_events(db)
    publish(db, pool, stream, merchant)
    # Read by a consumer (pending in the group), its deliveries not yet written.
    stream.xreadgroup(webhook_delivery.GROUP, "c1", {STREAM: ">"}, count=500)
    assert republish_lost(pool, stream, older_than=timedelta(0)) == 0


def test_sweeps_racing_the_fan_out_and_the_trimming_copy_no_event(
    pool: ConnectionPool,
    database_url: str,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    receiver: Receiver,
) -> None:
    """The relay's sweep looks at events of any age while the fan-out takes
    them in and the stream is trimmed behind it: without a flush, no entry is
    ever missing, so nothing is published again."""
    settle_other_tests_events(db)
    endpoint_id, _ = endpoint(db, merchant, receiver.url)
    published: list[str] = []
    done = threading.Event()

    def fan_out() -> None:
        while not done.is_set():
            consume_once(pool, stream, "c1", block_ms=20)
            trim_acknowledged(stream)

    def write() -> None:
        try:
            for _ in range(150):
                published.append(publish(db_writer, pool, stream, merchant))
        finally:
            done.set()  # a failed write ends the race too, not the suite's patience

    copied = 0
    with psycopg.connect(database_url, autocommit=True) as db_writer:
        taker, writer = threading.Thread(target=fan_out), threading.Thread(target=write)
        taker.start()
        writer.start()
        while not done.is_set():
            copied += republish_lost(pool, stream, older_than=timedelta(0))
        writer.join()
        taker.join()
    consume_once(pool, stream, "c1", block_ms=20)
    copied += republish_lost(pool, stream, older_than=timedelta(0))
    assert copied == 0
    assert sorted(d[0] for d in deliveries(db, endpoint_id)) == sorted(published)


def test_nothing_is_published_again_while_no_consumer_group_reads_the_stream(
    pool: ConnectionPool, db: psycopg.Connection, merchant: Merchant, redis_client: redis.Redis
) -> None:
    settle_other_tests_events(db)
    publish(db, pool, redis_client, merchant)
    redis_client.flushall()
    assert republish_lost(pool, redis_client, older_than=timedelta(0)) == 0


@pytest.fixture
def tls_receiver(tmp_path: Any) -> Iterator[tuple[Receiver, ssl.SSLContext]]:
    """A receiver over HTTPS on 127.0.0.1 with a certificate for the names
    the tests below give it, and a client context that trusts it."""
    authority = trustme.CA()
    issued = authority.issue_cert("hooks.rebind.test", "hooks.pinned.test")
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(certificate))
    issued.private_key_pem.write_to_path(str(key))
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    with serving_receiver(tls=(str(certificate), str(key))) as running:
        yield running, trusting


def test_a_name_that_rebinds_to_loopback_after_the_check_gets_nothing(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    tls_receiver: tuple[Receiver, ssl.SSLContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a name whose first answer is a public address and every later
    # one loopback, where a receiver with a valid certificate for it listens
    receiver, trusting = tls_receiver
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    answers: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        address = "93.184.215.14" if not answers else "127.0.0.1"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, args[0] if args else 443))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    endpoint_id, _ = endpoint(db, merchant, f"https://hooks.rebind.test:{port}/hooks")
    publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    # When the sender delivers without permission for private addresses
    strict = DeliveryPolicy(schedule=[timedelta(milliseconds=20)], timeout=1, allow_private=False)
    send_until_quiet(pool, strict, seconds=1.0, verify=trusting)
    # Then it connected only to the address it checked: loopback got nothing
    assert receiver.tries == {} and receiver.deliveries == []
    # (the retry resolved anew, got loopback and refused before connecting)
    [(_, status, attempts, _)] = deliveries(db, endpoint_id)
    assert (status, attempts) == ("dead", 2) and len(answers) == attempts


def test_a_delivery_connects_to_the_checked_address_under_the_endpoint_s_name(
    pool: ConnectionPool,
    db: psycopg.Connection,
    merchant: Merchant,
    stream: redis.Redis,
    tls_receiver: tuple[Receiver, ssl.SSLContext],
) -> None:
    # Given an endpoint whose name resolves (once) to the receiver's address
    receiver, trusting = tls_receiver
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port_: int) -> list[str]:
        asked.append((host, port_))
        return ["127.0.0.1"]

    endpoint_id, secret = endpoint(db, merchant, f"https://hooks.pinned.test:{port}/hooks")
    receiver.secret = secret
    publish(db, pool, stream, merchant)
    consume_once(pool, stream, "c1", block_ms=100)
    # When it is delivered
    policy = DeliveryPolicy(
        schedule=[timedelta(milliseconds=20)], timeout=2, allow_private=True, resolve=resolve
    )
    send_until_quiet(pool, policy, seconds=0.5, verify=trusting)
    # Then the request went to that address, named as the endpoint (Host and
    # the TLS server name its certificate was checked against)
    [delivery] = receiver.wait_for(1)
    assert delivery.verified and delivery.headers["host"] == f"hooks.pinned.test:{port}"
    assert asked == [("hooks.pinned.test", port)]
    assert [status for _, status, _, _ in deliveries(db, endpoint_id)] == ["delivered"]
