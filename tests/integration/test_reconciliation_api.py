"""Starting and reading reconciliations (an operator's), and the ledger (a
merchant's own, or any merchant's for an operator), over the API."""

from __future__ import annotations

import csv
import io
import uuid

import psycopg
import pytest

from gateway.types import GatewayConfig
from payments.routing import RoutingTable
from tests.conftest import Merchant
from tests.conftest import Operator
from tests.conftest import new_merchant
from tests.conftest import new_operator
from tests.support.card_numbers import SHAPES
from tests.support.card_numbers import holds_pan
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.gateway import simulators

pytestmark = pytest.mark.anyio

HEADER = b"batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
LINE = b"2026-11-24,2026-11-24,capture,psp_1,pay_1,pay_1,1000,39,961,EUR\n"


async def upload(gateway: Gateway, caller: Merchant | Operator, report: bytes):  # type: ignore[no-untyped-def]
    headers = {**gateway.headers(caller.api_key), "Content-Type": "text/csv"}
    return await gateway.client.post("/reconciliations", content=report, headers=headers)


async def test_an_uploaded_report_is_streamed_in_and_handed_to_a_worker(
    gateway: Gateway, operator: Operator, db: psycopg.Connection
) -> None:
    response = await upload(gateway, operator, HEADER + LINE * 3)
    assert response.status_code == 202
    run = response.json()
    assert (run["status"], run["source"], run["lineCount"]) == ("pending", "upload", 3)
    assert gateway.work.reconciliations == [run["reconciliationId"]]
    read = await gateway.client.get(
        f"/reconciliations/{run['reconciliationId']}", headers=gateway.headers(operator.api_key)
    )
    assert read.json() == run
    started = db.execute(
        "SELECT operator_id, api_key_id, merchant_id FROM reconciliations WHERE id = %s",
        (run["reconciliationId"],),
    ).fetchone()
    assert started == (operator.id, operator.key_id, None)


async def test_a_psp_batch_can_be_named_instead(gateway: Gateway, operator: Operator) -> None:
    response = await gateway.client.post(
        "/reconciliations",
        json={"pspBatch": "2026-11-24"},
        headers=gateway.headers(operator.api_key),
    )
    assert response.status_code == 202
    assert (response.json()["source"], response.json()["batch"]) == ("psp", "2026-11-24")


async def test_a_run_names_its_psp_the_routing_default_unless_the_operator_names_another(
    gateway_config: GatewayConfig, operator: Operator, redis_client: object
) -> None:
    routing = RoutingTable(default="alpha")
    async with running_gateway(
        gateway_config, routing=routing, connectors=simulators("alpha", "beta")
    ) as gateway:
        headers = gateway.headers(operator.api_key)
        by_default = await gateway.client.post(
            "/reconciliations", json={"pspBatch": "2026-11-24"}, headers=headers
        )
        named = await gateway.client.post(
            "/reconciliations", json={"pspBatch": "2026-11-24", "psp": "beta"}, headers=headers
        )
        uploaded = await gateway.client.post(
            "/reconciliations?psp=beta",
            content=HEADER + LINE,
            headers={**headers, "Content-Type": "text/csv"},
        )
        unknown = await gateway.client.post(
            "/reconciliations", json={"pspBatch": "2026-11-24", "psp": "gamma"}, headers=headers
        )
    assert [r.status_code for r in (by_default, named, uploaded)] == [202, 202, 202]
    assert [r.json()["psp"] for r in (by_default, named, uploaded)] == ["alpha", "beta", "beta"]
    assert (unknown.status_code, unknown.json()["code"]) == (400, "validation_error")
    assert unknown.json()["errors"] == [{"pointer": "/psp", "detail": "not a PSP configured here"}]
    assert len(gateway.work.reconciliations) == 3


@pytest.mark.parametrize(
    ("report", "code"),
    [
        (
            HEADER + b"2026-11-24,2026-11-24,capture,psp_1,pay_1,pay_1,many,39,961,EUR\n",
            "validation_error",
        ),
        (
            HEADER + b"2026-11-24,not-a-date,capture,psp_1,pay_1,pay_1,1,0,1,EUR\n",
            "validation_error",
        ),
        (
            HEADER
            + b"2026-11-24,2026-11-24,capture,psp_1,4111111111111111,pay_1,1000,39,961,EUR\n",
            "raw_card_data_forbidden",
        ),
    ],
)
async def test_a_bad_report_is_refused_and_nothing_is_kept(
    gateway: Gateway, operator: Operator, db: psycopg.Connection, report: bytes, code: str
) -> None:
    response = await upload(gateway, operator, report)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert "4111111111111111" not in response.text
    kept = db.execute("SELECT count(*) FROM reconciliations WHERE operator_id = %s", (operator.id,))
    assert kept.fetchone() == (0,) and gateway.work.reconciliations == []


COLUMNS = HEADER.decode().strip().split(",")


def report_with(column: str, value: str) -> bytes:
    """A report of one line with `value` in `column`, written as a CSV writer would."""
    text = io.StringIO()
    clean = LINE.decode().strip().split(",")
    line = [value if name == column else field for name, field in zip(COLUMNS, clean, strict=True)]
    csv.writer(text, lineterminator="\n").writerow(line)
    return HEADER + text.getvalue().encode()


@pytest.mark.parametrize(
    "column", ["batch", "type", "psp_reference", "reference", "payment_reference", "currency"]
)
async def test_a_card_number_in_any_shape_in_any_text_column_is_refused_and_nothing_is_kept(
    gateway: Gateway, operator: Operator, db: psycopg.Connection, column: str
) -> None:
    for shape in SHAPES:
        response = await upload(gateway, operator, report_with(column, shape))
        assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
        assert not holds_pan(response.text)
    kept = db.execute("SELECT count(*) FROM reconciliations WHERE operator_id = %s", (operator.id,))
    assert kept.fetchone() == (0,) and gateway.work.reconciliations == []


@pytest.mark.parametrize("column", ["gross", "fee", "net"])
async def test_a_card_number_in_an_amount_column_is_refused(
    gateway: Gateway, operator: Operator, column: str
) -> None:
    for value in ("4111111111111111", "-4111111111111111"):
        response = await upload(gateway, operator, report_with(column, value))
        assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")


async def test_a_card_number_after_hundreds_of_harmless_long_numbers_is_still_found(
    gateway: Gateway, operator: Operator
) -> None:
    harmless = "2026 1129 1230 4500"  # 16 digits apart, but a year is no issuer
    lines = [LINE.replace(b"psp_1", harmless.encode())] * 300
    card = LINE.replace(b"pay_1,pay_1", b"pay_1,4111.1111.1111.1111")
    response = await upload(gateway, operator, HEADER + b"".join(lines) + card)
    assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
    accepted = await upload(gateway, operator, HEADER + b"".join(lines))
    assert accepted.status_code == 202


async def test_a_report_with_long_ids_and_other_scripts_is_accepted(
    gateway: Gateway, operator: Operator
) -> None:
    line = (
        f"lot-é-{uuid.uuid4()},2026-11-24,capture,{uuid.uuid4().hex},pay_1,pay_1,1000,39,961,EUR\n"
    )
    response = await upload(gateway, operator, HEADER + line.encode())
    assert response.status_code == 202, response.text


async def test_reconciliation_needs_an_operator_key_with_its_role_and_runs_are_every_operators(
    gateway: Gateway, operator: Operator, merchant: Merchant, database_url: str
) -> None:
    run = (await upload(gateway, operator, HEADER + LINE)).json()
    for refused_by in (merchant, new_operator(database_url, roles=["admin"])):
        refused = await upload(gateway, refused_by, HEADER + LINE)
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_role")
    path = f"/reconciliations/{run['reconciliationId']}"
    assert (
        await gateway.client.get(path, headers=gateway.headers(merchant.api_key))
    ).status_code == 403
    colleague = gateway.headers(new_operator(database_url, roles=["reconciliation"]).api_key)
    assert (await gateway.client.get(path, headers=colleague)).json() == run
    assert (await gateway.client.get(f"{path}/breaks", headers=colleague)).status_code == 200
    listed = (await gateway.client.get("/reconciliations", headers=colleague)).json()["data"]
    assert run["reconciliationId"] in {r["reconciliationId"] for r in listed}


async def test_breaks_and_the_ledger_are_readable(
    gateway: Gateway, operator: Operator, merchant: Merchant, db: psycopg.Connection
) -> None:
    run = (await upload(gateway, operator, HEADER + LINE)).json()
    db.execute(
        "INSERT INTO reconciliation_results (reconciliation_id, line_number, class, record_type,"
        " reference, reason) VALUES (%s, 2, 'missing_internally', 'capture', 'pay_1', 'no record')",
        (run["reconciliationId"],),
    )
    headers = gateway.headers(operator.api_key)
    found = (
        await gateway.client.get(
            f"/reconciliations/{run['reconciliationId']}/breaks",
            params={"class": "missing_internally"},
            headers=headers,
        )
    ).json()
    assert [(b["line"], b["class"], b["reference"]) for b in found["data"]] == [
        (2, "missing_internally", "pay_1")
    ]
    for reader, params in ((merchant, {}), (operator, {"merchantId": merchant.id})):
        accounts = await gateway.client.get(
            "/ledger/accounts", params=params, headers=gateway.headers(reader.api_key)
        )
        entries = await gateway.client.get(
            "/ledger/entries",
            params={**params, "paymentId": "pay_1"},
            headers=gateway.headers(reader.api_key),
        )
        assert accounts.status_code == entries.status_code == 200
        assert accounts.json()["data"] == [] and entries.json()["data"] == []


async def test_a_merchant_reads_only_its_own_ledger_and_an_operator_names_the_merchant(
    gateway: Gateway, operator: Operator, merchant: Merchant, database_url: str
) -> None:
    other = new_merchant(database_url)
    mine = gateway.headers(merchant.api_key)
    theirs = await gateway.client.get(
        "/ledger/accounts", params={"merchantId": other.id}, headers=mine
    )
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    unnamed = await gateway.client.get("/ledger/entries", headers=gateway.headers(operator.api_key))
    assert (unnamed.status_code, unnamed.json()["code"]) == (400, "validation_error")
    assert unnamed.json()["errors"][0]["pointer"] == "/merchantId"
    nobody = await gateway.client.get(
        "/ledger/accounts",
        params={"merchantId": "mer_nobody"},
        headers=gateway.headers(operator.api_key),
    )
    assert nobody.status_code == 404
    without = new_merchant(database_url, roles=["payments:read"])
    refused = await gateway.client.get("/ledger/accounts", headers=gateway.headers(without.api_key))
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_role")
