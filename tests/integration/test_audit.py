"""The audit log: written with every change, append-only, and a chain that
names each row edited, deleted, reordered or slipped in."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from actors.operations import drive_operation
from gateway.types import GatewayConfig
from store.audit import as_actor
from store.audit import record
from store.audit import seal
from store.audit import verify
from store.migrate import migrate
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.bank import Bank
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.payments import create_payment
from tests.support.servers import Servers


@pytest.fixture
def own_database(servers: Servers) -> Iterator[str]:
    """A chain of its own: tampering here must not touch other tests' log."""
    name = f"paystream_audit_{uuid.uuid4().hex[:10]}"
    servers.postgres.ensure_database(name)
    url = servers.postgres.url(name)
    migrate(url)
    yield url


def write(conn: psycopg.Connection, count: int, actor: str = "system:test") -> None:
    with conn.transaction():
        as_actor(conn, actor, "req_1")
        for number in range(count):
            record(
                conn,
                merchant_id="mer_x",
                action="thing.changed",
                object_type="thing",
                object_id=f"thing_{number}",
                before={"n": number},
                after={"n": number + 1},
            )


def test_an_audit_rows_object_type_is_its_actions_first_part_unless_given(
    own_database: str,
) -> None:
    with psycopg.connect(own_database, autocommit=True) as conn:
        with conn.transaction():
            as_actor(conn, "system:test", "req_1")
            record(conn, merchant_id=None, action="webhook_delivery.replayed", object_id="wd_1")
            record(
                conn,
                merchant_id=None,
                action="console.signed_in",
                object_type="api_key",
                object_id="key_1",
            )
        rows = conn.execute(
            "SELECT action, object_type, object_id FROM audit_log ORDER BY seq"
        ).fetchall()
    assert rows == [
        ("webhook_delivery.replayed", "webhook_delivery", "wd_1"),
        ("console.signed_in", "api_key", "key_1"),
    ]


@pytest.fixture
def sealed(own_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(own_database, autocommit=True) as conn:
        write(conn, 10)
        seal(conn)
        yield conn


def tamper(conn: psycopg.Connection, statement: str, params: tuple[object, ...] = ()) -> None:
    """What an attacker with the database owner's rights could do."""
    with conn.transaction():
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(statement, params)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def test_an_untouched_log_verifies(sealed: psycopg.Connection) -> None:
    verdict = verify(sealed)
    assert (
        verdict.intact
        and verdict.sealed == 10
        and verdict.unsealed == 0
        and len(verdict.head) == 64
    )


def test_the_database_refuses_to_change_or_remove_audit_rows(sealed: psycopg.Connection) -> None:
    for statement in (
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE audit_seals SET gap = true",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sealed.execute(statement)


def test_an_edited_row_is_named(sealed: psycopg.Connection) -> None:
    tamper(sealed, "UPDATE audit_log SET after = '{\"n\": 100}' WHERE seq = 4")
    assert verify(sealed).problems == ["seq 4: the row was edited after it was sealed"]


def test_an_edited_row_with_its_hash_recomputed_is_still_named(sealed: psycopg.Connection) -> None:
    tamper(sealed, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 6")
    tamper(
        sealed, "UPDATE audit_log SET content_hash = audit_content_hash(audit_log) WHERE seq = 6"
    )
    assert verify(sealed).problems == ["seq 6: the row was edited after it was sealed"]


def test_a_deleted_row_is_named(sealed: psycopg.Connection) -> None:
    tamper(sealed, "DELETE FROM audit_log WHERE seq = 7")
    assert verify(sealed).problems == ["seq 7: the row was deleted"]


def test_reordered_rows_are_named(sealed: psycopg.Connection) -> None:
    columns = (
        "occurred_at, actor, request_id, merchant_id, action, object_type, object_id, before, after"
    )
    tamper(
        sealed,
        f"UPDATE audit_log a SET ({columns}) = (SELECT {columns} FROM audit_log b"
        " WHERE b.seq = CASE a.seq WHEN 2 THEN 3 ELSE 2 END) WHERE a.seq IN (2, 3)",
    )
    tamper(
        sealed,
        "UPDATE audit_log SET content_hash = audit_content_hash(audit_log) WHERE seq IN (2, 3)",
    )
    assert sorted(verify(sealed).problems) == [
        "seq 2: holds the row sealed at seq 3 (reordered)",
        "seq 3: holds the row sealed at seq 2 (reordered)",
    ]


def test_a_row_slipped_into_a_gap_is_named(own_database: str) -> None:
    with psycopg.connect(own_database, autocommit=True) as conn:
        write(conn, 2)
        with pytest.raises(RuntimeError), conn.transaction():  # a rolled-back writer leaves a gap
            write(conn, 1)
            raise RuntimeError
        write(conn, 2)
        seal(conn)
        assert verify(conn).intact
        tamper(
            conn,
            "INSERT INTO audit_log (seq, action, object_type, object_id, content_hash)"
            " OVERRIDING SYSTEM VALUE VALUES (3, 'forged', 'thing', 'x', '\\x00')",
        )
        assert verify(conn).problems == ["seq 3: a row appeared where none was sealed (inserted)"]


def test_the_cli_verifies_and_fails_on_tampering(
    sealed: psycopg.Connection, own_database: str
) -> None:
    env = {**os.environ, "DATABASE_URL": own_database}
    command = [sys.executable, "-m", "paystream", "audit", "verify"]
    intact = subprocess.run(command, env=env, capture_output=True, text=True)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    tamper(sealed, "DELETE FROM audit_log WHERE seq = 5")
    broken = subprocess.run(command, env=env, capture_output=True, text=True)
    assert broken.returncode == 1 and "seq 5: the row was deleted" in broken.stdout + broken.stderr


@pytest.mark.anyio
async def test_an_api_change_is_audited_with_its_key_and_request_id(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    response = await gateway.client.post(
        "/payments",
        json={
            "orderId": uuid.uuid4().hex,
            "amount": 500,
            "currency": "EUR",
            "methodToken": "tok_visa",
        },
        headers={
            **gateway.headers(merchant.api_key, uuid.uuid4().hex),
            "X-Request-Id": "req-from-client-1",
        },
    )
    assert response.headers["x-request-id"] == "req-from-client-1"
    payment_id = response.json()["paymentId"]
    row = db.execute(
        "SELECT actor, request_id, action, after->>'status' FROM audit_log WHERE object_id = %s",
        (payment_id,),
    ).fetchone()
    key_id = db.execute("SELECT id FROM api_keys WHERE merchant_id = %s", (merchant.id,)).fetchone()
    assert row == (key_id[0], "req-from-client-1", "payment.created", "PENDING")  # type: ignore[index]


@pytest.mark.anyio
async def test_the_audit_log_is_read_by_its_role_filtered_and_per_merchant(
    gateway: Gateway, merchant: Merchant, database_url: str
) -> None:
    created = await gateway.create_payment(merchant.api_key)
    payment_id = created.json()["paymentId"]
    headers = gateway.headers(merchant.api_key)
    mine = (
        await gateway.client.get("/audit", params={"objectId": payment_id}, headers=headers)
    ).json()
    assert [(e["action"], e["objectId"]) for e in mine["data"]] == [("payment.created", payment_id)]
    other = new_merchant(database_url)
    theirs = await gateway.client.get(
        "/audit", params={"objectId": payment_id}, headers=gateway.headers(other.api_key)
    )
    assert theirs.json()["data"] == []
    clerk = new_merchant(database_url, roles=["payments:read"])
    refused = await gateway.client.get("/audit", headers=gateway.headers(clerk.api_key))
    assert refused.status_code == 403


def test_a_worker_change_is_audited_as_the_system_in_the_same_transaction(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    drive_operation.fn(authorize)
    rows = bank.db.execute(
        "SELECT action, actor FROM audit_log WHERE object_id = %s ORDER BY seq", (payment_id,)
    ).fetchall()
    assert rows == [("payment.created", "system"), ("payment.captured", "system:worker")]
    events = bank.db.execute(
        "SELECT count(*) FROM payment_events WHERE payment_id = %s", (payment_id,)
    )
    assert events.fetchone() == (len(rows),)


def test_a_rolled_back_change_leaves_no_audit_row(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        record(
            conn,
            merchant_id="mer_rb",
            action="thing.changed",
            object_type="thing",
            object_id="rb_1",
        )
        conn.rollback()
        assert conn.execute(
            "SELECT count(*) FROM audit_log WHERE object_id = 'rb_1'"
        ).fetchone() == (0,)


@pytest.mark.anyio
async def test_the_request_id_is_made_when_the_client_sends_none_or_a_bad_one(
    gateway_config: GatewayConfig, redis_client: object
) -> None:
    async with running_gateway(gateway_config) as gateway:
        made = await gateway.client.get("/healthz")
        bad = await gateway.client.get("/healthz", headers={"X-Request-Id": "no spaces please"})
    assert made.headers["x-request-id"].startswith("req_")
    assert bad.headers["x-request-id"].startswith("req_")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/audit", {"startingAfter": str(2**63)}),
        ("/audit", {"startingAfter": "2145655401907521323008"}),
    ],
)
async def test_a_cursor_beyond_what_the_database_counts_is_400_not_500(
    gateway: Gateway, merchant: Merchant, path: str, params: dict[str, str]
) -> None:
    response = await gateway.client.get(
        path, params=params, headers=gateway.headers(merchant.api_key)
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
