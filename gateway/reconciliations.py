"""Reconciliation endpoints (operator role `reconciliation`) and the ledger
(a merchant's own with `ledger:read`; any merchant's for an operator).

A settlement report is uploaded as CSV and streamed straight into Postgres
with COPY (never whole in memory), or named as a PSP batch for the worker to
fetch. Either way the answer is 202 with a run to poll; the worker matches.
The PSP's report covers every merchant of this gateway, so only operators
start and read runs. An uploaded report is the operator's claim: the worker
checks it against the PSP's own data before it settles or resolves anything.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from psycopg import AsyncConnection

from gateway.auth import MerchantRole
from gateway.auth import OperatorRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import listing
from gateway.http import page
from gateway.http import page_window
from gateway.problems import Problem
from gateway.problems import not_found
from gateway.resources import balance_resource
from gateway.resources import break_resource
from gateway.resources import ledger_entry_resource
from gateway.resources import run_resource
from gateway.schemas.reconciliation import CreateReconciliationRequest
from gateway.schemas.reconciliation import LedgerBalances
from gateway.schemas.reconciliation import LedgerEntryList
from gateway.schemas.reconciliation import LedgerQuery
from gateway.schemas.reconciliation import ListBreaksQuery
from gateway.schemas.reconciliation import ListEntriesQuery
from gateway.schemas.reconciliation import Reconciliation
from gateway.schemas.reconciliation import ReconciliationBreakList
from gateway.schemas.reconciliation import ReconciliationList
from gateway.schemas.reconciliation import StartReconciliationQuery
from store.audit import record
from store.keys import Principal
from store.keys import PrincipalKind
from store.ledger import balances
from store.ledger import entries
from store.merchants import merchant_exists
from store.reconciliation_runs import Starter
from store.reconciliation_runs import create_run
from store.reconciliation_runs import get_run
from store.reconciliation_runs import list_breaks
from store.reconciliation_runs import list_runs
from store.settlement_reports import BadReport
from store.settlement_reports import copy_report
from store.settlement_reports import report_carries_card_number


async def start_reconciliation(
    call: Call[CreateReconciliationRequest | None, StartReconciliationQuery],
) -> Answer:
    """From an uploaded report (the body, text/csv), or a PSP batch to fetch;
    of the PSP named (`psp` in the body, or in the query for an upload), by
    default the routing table's default PSP."""
    conn, by = call.conn, Starter(call.principal.operator_id, call.principal.key_id)
    source, batch = ("upload", None) if call.body is None else ("psp", call.body.psp_batch)
    psp = _reconciled_psp(call)
    run_id = await create_run(conn, by, source, batch, psp=psp)
    await record(
        conn,
        merchant_id=None,
        action="reconciliation.started",
        object_id=run_id,
        after={"source": source, "batch": batch, "psp": psp},
    )
    if call.upload is not None:
        try:
            await copy_report(conn, run_id, call.upload)
        except BadReport as error:
            raise Problem("validation_error", f"the report cannot be read: {error}") from None
        if await report_carries_card_number(conn, run_id):
            raise Problem(
                "raw_card_data_forbidden", "the report carries what looks like a card number"
            )
    call.after_commit(partial(call.services.work.nudge_reconciliation, run_id))
    run = await get_run(conn, run_id)
    assert run is not None
    return run_resource(run)


def _reconciled_psp(
    call: Call[CreateReconciliationRequest | None, StartReconciliationQuery],
) -> str:
    config = call.services.config
    named = (call.body.psp if call.body is not None else None) or call.query.psp
    if named is None:
        return config.routing.default
    if named not in config.connectors and named != config.routing.default:
        raise Problem(
            "validation_error",
            f"no PSP named {named} is configured here",
            errors=[{"pointer": "/psp", "detail": "not a PSP configured here"}],
        )
    return named


async def list_reconciliations(call: Call[None, None]) -> Answer:
    """Every run: operators answer for the whole platform's books."""
    return listing(run_resource(run) for run in await list_runs(call.conn, 100))


async def read_reconciliation(call: Call[None, None]) -> Answer:
    run = await get_run(call.conn, call.path["reconciliationId"])
    if run is None:
        raise not_found("reconciliation")
    return run_resource(run)


async def reconciliation_breaks(call: Call[None, ListBreaksQuery]) -> Answer:
    run_id, query = call.path["reconciliationId"], call.query
    if await get_run(call.conn, run_id) is None:
        raise not_found("reconciliation")
    rows = await list_breaks(
        call.conn,
        run_id,
        class_=query.class_,
        **page_window(query),
    )
    return page(rows, query.limit, break_resource, lambda row: row.id)


_LEDGER_READERS = (MerchantRole.LEDGER_READ, OperatorRole.RECONCILIATION)


async def _ledger_of(conn: AsyncConnection[Any], principal: Principal, asked: str | None) -> str:
    """Whose ledger: a merchant reads its own (another's is 404, as if it did
    not exist); an operator names the merchant."""
    if principal.kind is PrincipalKind.MERCHANT:
        if asked is not None and asked != principal.merchant_id:
            raise not_found("merchant")
        return principal.merchant_id
    if asked is None:
        raise Problem(
            "validation_error",
            "an operator names the merchant whose ledger to read",
            errors=[{"pointer": "/merchantId", "detail": "required for an operator key"}],
        )
    if not await merchant_exists(conn, asked):
        raise not_found("merchant")
    return asked


async def ledger_accounts(call: Call[None, LedgerQuery]) -> Answer:
    merchant_id = await _ledger_of(call.conn, call.principal, call.query.merchant_id)
    return listing(balance_resource(row) for row in await balances(call.conn, merchant_id))


async def ledger_entries(call: Call[None, ListEntriesQuery]) -> Answer:
    query = call.query
    rows = await entries(
        call.conn,
        await _ledger_of(call.conn, call.principal, query.merchant_id),
        payment_id=query.payment_id,
        **page_window(query),
    )
    return page(rows, query.limit, ledger_entry_resource, lambda e: e.id)


# No body for an upload: the report streams in as `call.upload`.
_START: Endpoint[CreateReconciliationRequest | None, StartReconciliationQuery] = Endpoint(
    "POST",
    "/reconciliations",
    start_reconciliation,
    "Start a reconciliation",
    "reconciliation",
    ok_status=202,
    response=Reconciliation,
    roles=(OperatorRole.RECONCILIATION,),
    body=CreateReconciliationRequest,
    query=StartReconciliationQuery,
    csv_upload=True,
)
_RUN = "/reconciliations/{reconciliationId}"
ENDPOINTS = (
    _START,
    Endpoint(
        "GET",
        "/reconciliations",
        list_reconciliations,
        "List reconciliations",
        "reconciliation",
        response=ReconciliationList,
        roles=(OperatorRole.RECONCILIATION,),
    ),
    Endpoint(
        "GET",
        _RUN,
        read_reconciliation,
        "Get a reconciliation",
        "reconciliation",
        response=Reconciliation,
        roles=(OperatorRole.RECONCILIATION,),
    ),
    Endpoint(
        "GET",
        f"{_RUN}/breaks",
        reconciliation_breaks,
        "List a reconciliation's breaks",
        "reconciliation",
        response=ReconciliationBreakList,
        roles=(OperatorRole.RECONCILIATION,),
        query=ListBreaksQuery,
    ),
    Endpoint(
        "GET",
        "/ledger/accounts",
        ledger_accounts,
        "Ledger balances",
        "ledger",
        response=LedgerBalances,
        roles=_LEDGER_READERS,
        query=LedgerQuery,
        problems=("not_found",),
    ),
    Endpoint(
        "GET",
        "/ledger/entries",
        ledger_entries,
        "Ledger entries",
        "ledger",
        response=LedgerEntryList,
        roles=_LEDGER_READERS,
        query=ListEntriesQuery,
        problems=("not_found",),
    ),
)
