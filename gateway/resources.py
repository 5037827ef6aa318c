"""The API's shape of every object besides payments, refunds and the timeline
(those are in `payments.resources`, shared with the event payloads): one
function per resource, each the only place that resource is written, and a
test (`tests/unit/test_resources.py`) holds each to its model in
`gateway.schemas`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from payments.resources import timestamp
from store.audit import AuditRow
from store.keys import ApiKeyRow
from store.ledger import Balance, EntryView
from store.operators import OperatorRow
from store.reconciliation_runs import ReconciliationRow, ResultRow
from store.webhook_deliveries import DeliveryRow
from store.webhook_endpoints import EndpointRow


def _moment(moment: datetime | None) -> str | None:
    return timestamp(moment) if moment else None


def key_resource(row: ApiKeyRow, key: str | None = None) -> dict[str, Any]:
    """An API key, never its hash; the key itself only when it is just made."""
    resource = {
        "keyId": row.id,
        "prefix": row.key_prefix,
        "roles": row.roles,
        "description": row.description,
        "createdAt": timestamp(row.created_at),
        "revokedAt": _moment(row.revoked_at),
    }
    if key is not None:
        resource["apiKey"] = key
    return resource


def _operator(operator: OperatorRow) -> dict[str, Any]:
    return {
        "operatorId": operator.id,
        "name": operator.name,
        "createdAt": timestamp(operator.created_at),
    }


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
        "url": endpoint.url,
        "eventTypes": endpoint.event_types,
        "status": endpoint.status,
        "disabledReason": endpoint.disabled_reason,
        "previousSecretRetiresAt": timestamp(retires)
        if retires and retires > datetime.now(UTC)
        else None,
        "createdAt": timestamp(endpoint.created_at),
    }
    if with_secret:
        resource["secret"] = endpoint.secret
    return resource


def delivery_resource(delivery: DeliveryRow) -> dict[str, Any]:
    return {
        "deliveryId": delivery.id,
        "endpointId": delivery.endpoint_id,
        "eventId": delivery.event_id,
        "eventType": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": timestamp(delivery.next_attempt_at)
        if delivery.status == "pending"
        else None,
        "lastStatus": delivery.last_status,
        "lastError": delivery.last_error,
        "createdAt": timestamp(delivery.created_at),
        "deliveredAt": _moment(delivery.delivered_at),
    }


def run_resource(run: ReconciliationRow) -> dict[str, Any]:
    return {
        "reconciliationId": run.id,
        "psp": run.psp,
        "status": run.status,
        "source": run.source,
        "batch": run.batch,
        "lineCount": run.line_count,
        "counts": run.counts,
        "error": run.error,
        "createdAt": timestamp(run.created_at),
        "startedAt": _moment(run.started_at),
        "finishedAt": _moment(run.finished_at),
    }


def break_resource(row: ResultRow) -> dict[str, Any]:
    return {
        "breakId": row.id,
        "line": row.line_number,
        "class": row.class_,
        "recordType": row.record_type,
        "reference": row.reference,
        "pspReference": row.psp_reference,
        "reason": row.reason,
    }


def balance_resource(row: Balance) -> dict[str, Any]:
    return {"currency": row.currency, "account": row.kind, "balance": row.balance}


def ledger_entry_resource(entry: EntryView) -> dict[str, Any]:
    return {
        "entryId": entry.id,
        "psp": entry.psp,
        "sourceType": entry.source_type,
        "sourceId": entry.source_id,
        "paymentId": entry.payment_id,
        "description": entry.description,
        "createdAt": timestamp(entry.created_at),
        "postings": entry.postings,
    }


def audit_entry_resource(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "occurredAt": timestamp(row.occurred_at),
        "actor": row.actor,
        "requestId": row.request_id,
        "action": row.action,
        "objectType": row.object_type,
        "objectId": row.object_id,
        "before": row.before,
        "after": row.after,
    }
