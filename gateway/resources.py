"""The API's shape of every object besides payments, refunds and the timeline
(those are in `payments.resources`, shared with the event payloads): one
function per resource, each the only place that resource is written, and a
test (`tests/unit/test_resources.py`) holds each to its model in
`gateway.schemas`. Each names the fields it renders (`camel_fields`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

from payments.resources import camel_fields
from payments.resources import timestamp
from store.audit import AuditRow
from store.keys import ApiKeyRow
from store.ledger import Balance
from store.ledger import EntryView
from store.operators import OperatorRow
from store.reconciliation_runs import ReconciliationRow
from store.reconciliation_runs import ResultRow
from store.webhook_deliveries import DeliveryRow
from store.webhook_endpoints import EndpointRow


def key_resource(row: ApiKeyRow, key: str | None = None) -> dict[str, Any]:
    """An API key, never its hash; the key itself only when it is just made."""
    resource = {
        "keyId": row.id,
        "prefix": row.key_prefix,
        **camel_fields(row, "roles", "description", "created_at", "revoked_at"),
    }
    if key is not None:
        resource["apiKey"] = key
    return resource


def _operator(operator: OperatorRow) -> dict[str, Any]:
    return {"operatorId": operator.id, **camel_fields(operator, "name", "created_at")}


def operator_resource(operator: OperatorRow, keys: Sequence[ApiKeyRow]) -> dict[str, Any]:
    """An operator with its keys, revoked ones included."""
    return {**_operator(operator), "keys": [key_resource(key) for key in keys]}


def created_operator_resource(operator: OperatorRow, row: ApiKeyRow, key: str) -> dict[str, Any]:
    """A new operator with its first key, shown this once."""
    return {**_operator(operator), "key": key_resource(row, key)}


def endpoint_resource(endpoint: EndpointRow, *, with_secret: bool = False) -> dict[str, Any]:
    """A merchant's webhook endpoint; its secret only when it is just made or
    rotated, never the previous one."""
    retires = endpoint.previous_retires_at
    resource = {
        "endpointId": endpoint.id,
        **camel_fields(endpoint, "url", "event_types", "status", "disabled_reason"),
        "previousSecretRetiresAt": timestamp(retires)
        if retires and retires > datetime.now(UTC)
        else None,
        **camel_fields(endpoint, "created_at"),
    }
    if with_secret:
        resource["secret"] = endpoint.secret
    return resource


def delivery_resource(delivery: DeliveryRow) -> dict[str, Any]:
    return {
        "deliveryId": delivery.id,
        **camel_fields(delivery, "endpoint_id", "event_id", "event_type", "status", "attempts"),
        "nextAttemptAt": timestamp(delivery.next_attempt_at)
        if delivery.status == "pending"
        else None,
        **camel_fields(delivery, "last_status", "last_error", "created_at", "delivered_at"),
    }


def run_resource(run: ReconciliationRow) -> dict[str, Any]:
    return {
        "reconciliationId": run.id,
        **camel_fields(
            run, "psp", "status", "source", "batch", "line_count", "counts", "error",
            "created_at", "started_at", "finished_at",
        ),
    }  # fmt: skip


def break_resource(row: ResultRow) -> dict[str, Any]:
    return {
        "breakId": row.id,
        "line": row.line_number,
        "class": row.class_,
        **camel_fields(row, "record_type", "reference", "psp_reference", "reason"),
    }


def balance_resource(row: Balance) -> dict[str, Any]:
    return {"currency": row.currency, "account": row.kind, "balance": row.balance}


def ledger_entry_resource(entry: EntryView) -> dict[str, Any]:
    return {
        "entryId": entry.id,
        **camel_fields(
            entry, "psp", "source_type", "source_id", "payment_id", "description", "created_at",
            "postings",
        ),
    }  # fmt: skip


def audit_entry_resource(row: AuditRow) -> dict[str, Any]:
    return camel_fields(
        row, "seq", "occurred_at", "actor", "request_id", "action", "object_type", "object_id",
        "before", "after",
    )  # fmt: skip
