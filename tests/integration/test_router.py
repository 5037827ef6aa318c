"""The router enforces each endpoint's declaration: a handler is given only its
typed `Call`, so it has nothing to forget. Tiny endpoints are added to the real
gateway app and driven through the HTTP layer, on real Postgres and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from dataclasses import field
from typing import Annotated
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.pq import TransactionStatus
from pydantic import Field
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.auth import MerchantRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.problems import Problem
from gateway.router import build_routes
from gateway.schemas.common import ApiModel
from gateway.types import GatewayConfig
from payments.errors import InvalidState
from psp.breaker import breaker_states
from store.audit import record
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.gateway import RecordingWorkQueue

pytestmark = pytest.mark.anyio


class Note(ApiModel):
    text: Annotated[str, Field(min_length=1, max_length=40)]


class NoteQuery(ApiModel):
    limit: Annotated[int, Field(ge=1, le=10)] = 1


@dataclass
class Seen:
    calls: list[Call[Any, Any]] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)


SEEN = Seen()


async def write_note(call: Call[Note, None]) -> Answer:
    """Audits the note in the call's transaction; a note that begins with
    'refuse' is refused after it was written."""
    SEEN.calls.append(call)
    await record(
        call.conn,
        merchant_id=call.principal.merchant_id,
        action="test.noted",
        object_type="note",
        object_id=call.body.text,
    )
    cursor = await call.conn.execute(
        "SELECT current_setting('paystream.actor'), current_setting('paystream.request_id')"
    )
    actor, request_id = await cursor.fetchone() or ("", "")

    async def committed() -> None:
        SEEN.committed.append(call.body.text)

    call.after_commit(committed)
    if call.body.text.startswith("refuse"):
        raise InvalidState("this note is refused")
    in_transaction = call.conn.info.transaction_status is TransactionStatus.INTRANS
    return {"actor": actor, "requestId": request_id, "inTransaction": in_transaction}


async def read_notes(call: Call[None, NoteQuery]) -> Answer:
    SEEN.calls.append(call)
    with pytest.raises(LookupError):  # a read commits nothing
        call.after_commit(lambda: asyncio.sleep(0))
    in_transaction = call.conn.info.transaction_status is TransactionStatus.INTRANS
    return {"limit": call.query.limit, "inTransaction": in_transaction}


async def refuse_before_any_connection(call: Call[Note, None]) -> None:
    assert call.connection is None
    raise Problem("validation_error", "checked and refused")


async def public(call: Call[None, None]) -> Answer:
    with pytest.raises(LookupError):
        call.principal  # noqa: B018
    with pytest.raises(LookupError):
        call.conn  # noqa: B018
    return None


WRITE = (MerchantRole.PAYMENTS_WRITE,)
ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    Endpoint("POST", "/test/notes", write_note, "Note", "t", 201, roles=WRITE, body=Note),
    Endpoint(
        "POST",
        "/test/notes-once",
        write_note,
        "Note once",
        "t",
        201,
        roles=WRITE,
        body=Note,
        idempotency="required",
    ),
    Endpoint(
        "POST",
        "/test/checked-notes",
        write_note,
        "Checked note",
        "t",
        roles=WRITE,
        body=Note,
        check=refuse_before_any_connection,
    ),
    Endpoint(
        "GET",
        "/test/notes",
        read_notes,
        "Notes",
        "t",
        roles=(MerchantRole.PAYMENTS_READ,),
        query=NoteQuery,
    ),
    Endpoint("GET", "/test/public", public, "Public", "t", 204),
)


@pytest.fixture
async def client(
    gateway_config: GatewayConfig, redis_client: object
) -> AsyncIterator[httpx.AsyncClient]:
    SEEN.calls.clear()
    SEEN.committed.clear()

    def make_work_queue(redis: Redis) -> RecordingWorkQueue:
        return RecordingWorkQueue()

    app = create_app(gateway_config, make_work_queue, breaker_states)
    app.router.routes.extend(build_routes(ENDPOINTS))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


def bearer(merchant: Merchant, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {merchant.api_key}", **headers}


def audited(db: psycopg.Connection, text: str) -> int:
    row = db.execute("SELECT count(*) FROM audit_log WHERE object_id = %s", (text,)).fetchone()
    return int(row[0])  # type: ignore[index]


async def test_a_handler_never_runs_for_a_caller_without_its_role_or_with_a_bad_body(
    client: httpx.AsyncClient, merchant: Merchant, database_url: str
) -> None:
    reader = new_merchant(database_url, ["payments:read"])
    refused = [
        (await client.post("/test/notes", json={"text": "x"}), 401),
        (await client.post("/test/notes", json={"text": "x"}, headers=bearer(reader)), 403),
        (await client.post("/test/notes", json={"text": ""}, headers=bearer(merchant)), 400),
        (await client.post("/test/notes", json={"txt": "x"}, headers=bearer(merchant)), 400),
        (await client.post("/test/notes", content=b"x", headers=bearer(merchant)), 415),
        (await client.post("/test/notes-once", json={"text": "x"}, headers=bearer(merchant)), 400),
        (await client.get("/test/notes?limit=11", headers=bearer(merchant)), 400),
    ]
    assert [response.status_code for response, _ in refused] == [status for _, status in refused]
    assert SEEN.calls == []


async def test_a_write_runs_in_one_transaction_audited_as_the_callers_key(
    client: httpx.AsyncClient, merchant: Merchant, db: psycopg.Connection
) -> None:
    text = uuid.uuid4().hex[:12]
    response = await client.post(
        "/test/notes", json={"text": text}, headers=bearer(merchant, **{"X-Request-Id": "req-1"})
    )
    assert response.status_code == 201
    [call] = SEEN.calls
    assert isinstance(call.body, Note) and call.body.text == text
    assert response.json() == {
        "actor": call.principal.key_id,
        "requestId": "req-1",
        "inTransaction": True,
    }
    assert SEEN.committed == [text] and audited(db, text) == 1


async def test_a_read_gets_a_connection_outside_any_transaction_and_its_query_validated(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    response = await client.get("/test/notes?limit=3", headers=bearer(merchant))
    assert response.json() == {"limit": 3, "inTransaction": False}


async def test_a_refusal_rolls_its_work_back_and_is_the_answer_kept_under_the_key(
    client: httpx.AsyncClient, merchant: Merchant, db: psycopg.Connection
) -> None:
    text = f"refuse-{uuid.uuid4().hex[:12]}"
    headers = bearer(merchant, **{"Idempotency-Key": uuid.uuid4().hex})
    first = await client.post("/test/notes-once", json={"text": text}, headers=headers)
    again = await client.post("/test/notes-once", json={"text": text}, headers=headers)
    assert (first.status_code, first.json()["code"]) == (409, "invalid_state")
    assert first.headers["content-type"] == "application/problem+json"
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert len(SEEN.calls) == 1 and SEEN.committed == [] and audited(db, text) == 0


async def test_a_refusal_without_a_key_is_answered_and_rolled_back_too(
    client: httpx.AsyncClient, merchant: Merchant, db: psycopg.Connection
) -> None:
    text = f"refuse-{uuid.uuid4().hex[:12]}"
    response = await client.post("/test/notes", json={"text": text}, headers=bearer(merchant))
    assert (response.status_code, response.json()["code"]) == (409, "invalid_state")
    assert SEEN.committed == [] and audited(db, text) == 0


async def test_a_declared_check_runs_before_the_endpoint_takes_a_connection(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    response = await client.post(
        "/test/checked-notes", json={"text": "x"}, headers=bearer(merchant)
    )
    assert (response.status_code, response.json()["detail"]) == (400, "checked and refused")
    assert SEEN.calls == []


async def test_a_public_endpoint_has_no_caller_and_no_connection(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/test/public")
    assert response.status_code == 204 and "content-type" not in response.headers
