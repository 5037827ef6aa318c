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

from collections.abc import AsyncIterator
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole, OperatorRole, authenticate
from gateway.http import (
    json_response,
    listing,
    page,
    read_json_object,
    validate,
    validate_query,
)
from gateway.openapi import Endpoint
from gateway.problems import Problem
from gateway.resources import balance_resource, break_resource, ledger_entry_resource, run_resource
from gateway.schemas.reconciliation import (
    CreateReconciliationRequest,
    LedgerBalances,
    LedgerEntryList,
    LedgerQuery,
    ListBreaksQuery,
    ListEntriesQuery,
    Reconciliation,
    ReconciliationBreakList,
    ReconciliationList,
)
from gateway.types import Services
from store.audit import acting_async, record_async
from store.db import connection
from store.keys import Principal, PrincipalKind
from store.ledger import balances, entries
from store.merchants import merchant_exists
from store.reconciliation import (
    BadReport,
    Starter,
    copy_report,
    create_run,
    get_run,
    list_breaks,
    list_runs,
    report_carries_card_number,
)


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem("payload_too_large", f"a report may have at most {limit} bytes")
        yield chunk


async def _audit_start(
    conn: AsyncConnection[Any], run_id: str, source: str, batch: str | None
) -> None:
    await record_async(
        conn,
        merchant_id=None,
        action="reconciliation.started",
        object_type="reconciliation",
        object_id=run_id,
        after={"source": source, "batch": batch},
    )


async def start_reconciliation(request: Request) -> Response:
    principal = await authenticate(request, OperatorRole.RECONCILIATION)
    services: Services = request.app.state.services
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    actor, request_id = principal.key_id, request.state.request_id
    by = Starter(principal.operator_id, principal.key_id)
    if media_type == "text/csv":
        async with acting_async(services.pool, actor, request_id) as conn:
            run_id = await create_run(conn, by, "upload", None)
            await _audit_start(conn, run_id, "upload", None)
            try:
                await copy_report(conn, run_id, _limited(request, services.config.max_report_bytes))
            except BadReport as error:
                raise Problem("validation_error", f"the report cannot be read: {error}") from None
            if await report_carries_card_number(conn, run_id):
                raise Problem(
                    "raw_card_data_forbidden", "the report carries what looks like a card number"
                )
    elif media_type == "application/json":
        document = await read_json_object(request, services.config.max_body_bytes)
        command = validate(CreateReconciliationRequest, document)
        async with acting_async(services.pool, actor, request_id) as conn:
            run_id = await create_run(conn, by, "psp", command.psp_batch)
            await _audit_start(conn, run_id, "psp", command.psp_batch)
    else:
        raise Problem(
            "unsupported_media_type",
            "upload a report as text/csv, or name a PSP batch with application/json",
        )
    await services.work.nudge_reconciliation(run_id)
    async with connection(services.pool) as conn:
        run = await get_run(conn, run_id)
    assert run is not None
    return json_response(run_resource(run), 202)


async def list_reconciliations(request: Request) -> Response:
    """Every run: operators answer for the whole platform's books."""
    await authenticate(request, OperatorRole.RECONCILIATION)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        runs = await list_runs(conn, 100)
    return json_response(listing(run_resource(run) for run in runs))


async def read_reconciliation(request: Request) -> Response:
    await authenticate(request, OperatorRole.RECONCILIATION)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        run = await get_run(conn, request.path_params["reconciliationId"])
    if run is None:
        raise Problem("not_found", "no such reconciliation")
    return json_response(run_resource(run))


async def reconciliation_breaks(request: Request) -> Response:
    await authenticate(request, OperatorRole.RECONCILIATION)
    query = validate_query(ListBreaksQuery, request)
    services: Services = request.app.state.services
    run_id = request.path_params["reconciliationId"]
    async with connection(services.pool) as conn:
        if await get_run(conn, run_id) is None:
            raise Problem("not_found", "no such reconciliation")
        rows = await list_breaks(
            conn,
            run_id,
            class_=query.class_,
            limit=query.limit + 1,
            starting_after=query.starting_after,
        )
    return json_response(page(rows, query.limit, break_resource, lambda row: row.id))


_LEDGER_READERS = (MerchantRole.LEDGER_READ, OperatorRole.RECONCILIATION)


async def _ledger_of(conn: AsyncConnection[Any], principal: Principal, asked: str | None) -> str:
    """Whose ledger: a merchant reads its own (another's is 404, as if it did
    not exist); an operator names the merchant."""
    if principal.kind is PrincipalKind.MERCHANT:
        if asked is not None and asked != principal.merchant_id:
            raise Problem("not_found", "no such merchant")
        return principal.merchant_id
    if asked is None:
        raise Problem(
            "validation_error",
            "an operator names the merchant whose ledger to read",
            errors=[{"pointer": "/merchantId", "detail": "required for an operator key"}],
        )
    if not await merchant_exists(conn, asked):
        raise Problem("not_found", "no such merchant")
    return asked


async def ledger_accounts(request: Request) -> Response:
    principal = await authenticate(request, *_LEDGER_READERS)
    query = validate_query(LedgerQuery, request)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        rows = await balances(conn, await _ledger_of(conn, principal, query.merchant_id))
    return json_response(listing(balance_resource(row) for row in rows))


async def ledger_entries(request: Request) -> Response:
    principal = await authenticate(request, *_LEDGER_READERS)
    query = validate_query(ListEntriesQuery, request)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        rows = await entries(
            conn,
            await _ledger_of(conn, principal, query.merchant_id),
            payment_id=query.payment_id,
            limit=query.limit + 1,
            starting_after=query.starting_after,
        )
    return json_response(page(rows, query.limit, ledger_entry_resource, lambda e: e.id))


_RUN = "/reconciliations/{reconciliationId}"
ENDPOINTS = (
    Endpoint(
        "POST",
        "/reconciliations",
        start_reconciliation,
        "Start a reconciliation",
        "reconciliation",
        ok_status=202,
        response=Reconciliation,
        roles=(OperatorRole.RECONCILIATION,),
        body=CreateReconciliationRequest,
        csv_upload=True,
    ),
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
