"""Every response model of the OpenAPI document is exactly what its renderer
writes: the same fields by their JSON names, of the types the model says,
none missing and none extra (strict validation of the rendered JSON)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from gateway.app import ENDPOINTS
from gateway.health import health_resource
from gateway.http import listing
from gateway.http import page
from gateway.problems import Problem
from gateway.psp_webhooks import receipt
from gateway.resources import audit_entry_resource
from gateway.resources import balance_resource
from gateway.resources import break_resource
from gateway.resources import created_operator_resource
from gateway.resources import delivery_resource
from gateway.resources import endpoint_resource
from gateway.resources import key_resource
from gateway.resources import ledger_entry_resource
from gateway.resources import operator_resource
from gateway.resources import run_resource
from gateway.schemas.audit import AuditEntry
from gateway.schemas.audit import AuditList
from gateway.schemas.common import Health
from gateway.schemas.common import ProblemDetail
from gateway.schemas.keys import ApiKey
from gateway.schemas.keys import ApiKeyList
from gateway.schemas.keys import ApiKeyWithSecret
from gateway.schemas.keys import CreatedOperator
from gateway.schemas.keys import Operator
from gateway.schemas.keys import OperatorList
from gateway.schemas.payments import NextAction
from gateway.schemas.payments import Payment
from gateway.schemas.payments import PaymentEvent
from gateway.schemas.payments import PaymentEventList
from gateway.schemas.payments import PaymentList
from gateway.schemas.payments import Refund
from gateway.schemas.payments import RefundList
from gateway.schemas.reconciliation import LedgerBalance
from gateway.schemas.reconciliation import LedgerBalances
from gateway.schemas.reconciliation import LedgerEntry
from gateway.schemas.reconciliation import LedgerEntryList
from gateway.schemas.reconciliation import LedgerPosting
from gateway.schemas.reconciliation import Reconciliation
from gateway.schemas.reconciliation import ReconciliationBreak
from gateway.schemas.reconciliation import ReconciliationBreakList
from gateway.schemas.reconciliation import ReconciliationList
from gateway.schemas.webhooks import WebhookDelivery
from gateway.schemas.webhooks import WebhookDeliveryList
from gateway.schemas.webhooks import WebhookEndpoint
from gateway.schemas.webhooks import WebhookEndpointList
from gateway.schemas.webhooks import WebhookEndpointWithSecret
from gateway.schemas.webhooks import WebhookReceipt
from payments.records import PaymentRecord
from payments.records import RefundRecord
from payments.records import TimelineEvent
from payments.resources import payment_resource
from payments.resources import refund_resource
from payments.resources import timeline_event_resource
from store.audit import AuditRow
from store.keys import ApiKeyRow
from store.ledger import Balance
from store.ledger import EntryView
from store.operators import OperatorRow
from store.reconciliation_runs import ReconciliationRow
from store.reconciliation_runs import ResultRow
from store.webhook_deliveries import DeliveryRow
from store.webhook_endpoints import EndpointRow

NOW = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
PAYMENT = PaymentRecord(
    merchant_id="mer_1",
    order_id="order-1",
    amount=1999,
    currency="EUR",
    capture_method="manual",
    method_token="tok_visa",
    psp="simulator",
    description="a book",
    metadata={"sku": "b-1"},
    created_at=NOW,
    updated_at=NOW,
)
WAITING = replace(
    PAYMENT,
    status="REQUIRES_ACTION",
    return_url="https://shop.example/back",
    next_action_url="https://psp.example/challenge/1",
    action_expires_at=NOW + timedelta(minutes=15),
)
REFUND = RefundRecord(
    id="re_1",
    payment_id="pay_1",
    merchant_id="mer_1",
    amount=500,
    currency="EUR",
    status="PENDING",
    reason="damaged",
    created_at=NOW,
    updated_at=NOW,
)
EVENT = TimelineEvent(
    id="evt_1",
    payment_id="pay_1",
    type="payment.captured",
    from_status="PENDING",
    to_status="CAPTURED",
    source="psp",
    detail={},
    created_at=NOW,
)
KEY = ApiKeyRow("key_1", None, "opr_1", "sk_abcdefghi", ["reconciliation"], "ops", NOW, NOW)
OPERATOR = OperatorRow("opr_1", "Night shift", NOW)
ENDPOINT = EndpointRow(
    "we_1",
    "mer_1",
    "https://shop.example/hooks",
    ["*"],
    "whsec_new",
    "whsec_old",
    datetime.now(UTC) + timedelta(hours=1),
    "enabled",
    None,
    NOW,
    None,
)
DELIVERY = DeliveryRow(
    "wd_1", "we_1", "mer_1", "evt_1", "payment.captured", {}, "pending", 1, NOW, 500, "boom",
    NOW, None,
)  # fmt: skip
RUN = ReconciliationRow(
    "rec_1", None, "psp", "simulator", "2026-11-24", "completed", None, 3, {"matched": 3}, NOW,
    NOW, NOW,
)  # fmt: skip
BREAK = ResultRow(7, 2, "amount_mismatch", "capture", "pay_1", "psp_1", "mer_1", False, "0 != 1")
BALANCE = Balance("EUR", "psp_receivable", 1999)
ENTRY = EntryView(
    "je_1", "simulator", "capture", "op_1", "pay_1", "capture of pay_1", NOW,
    [{"account": "psp_receivable", "amount": 1999, "currency": "EUR"}],
)  # fmt: skip
AUDIT = AuditRow(
    1, NOW, "key_1", "req_1", "mer_1", "api_key.created", "api_key", "key_1", None, {"a": 1}
)

RENDERED: dict[type[BaseModel], Any] = {
    Payment: payment_resource(PAYMENT),
    NextAction: payment_resource(WAITING)["nextAction"],
    PaymentList: page([PAYMENT, PAYMENT], 1, payment_resource, lambda row: row.id),
    Refund: refund_resource(REFUND),
    RefundList: page([REFUND], 1, refund_resource, lambda row: row.id),
    PaymentEvent: timeline_event_resource(EVENT),
    PaymentEventList: listing([timeline_event_resource(EVENT)]),
    ApiKey: key_resource(KEY),
    ApiKeyWithSecret: key_resource(KEY, "sk_secret"),
    ApiKeyList: listing([key_resource(KEY)]),
    Operator: operator_resource(OPERATOR, [KEY]),
    CreatedOperator: created_operator_resource(OPERATOR, KEY, "sk_secret"),
    OperatorList: listing([operator_resource(OPERATOR, [])]),
    WebhookEndpoint: endpoint_resource(ENDPOINT),
    WebhookEndpointWithSecret: endpoint_resource(ENDPOINT, with_secret=True),
    WebhookEndpointList: listing([endpoint_resource(ENDPOINT)]),
    WebhookDelivery: delivery_resource(DELIVERY),
    WebhookDeliveryList: page([DELIVERY], 20, delivery_resource, lambda row: row.id),
    WebhookReceipt: receipt(duplicate=True),
    Reconciliation: run_resource(RUN),
    ReconciliationList: listing([run_resource(RUN)]),
    ReconciliationBreak: break_resource(BREAK),
    ReconciliationBreakList: page([BREAK, BREAK], 1, break_resource, lambda row: row.id),
    LedgerBalance: balance_resource(BALANCE),
    LedgerBalances: listing([balance_resource(BALANCE)]),
    LedgerEntry: ledger_entry_resource(ENTRY),
    LedgerPosting: ENTRY.postings[0],
    LedgerEntryList: page([ENTRY], 20, ledger_entry_resource, lambda row: row.id),
    AuditEntry: audit_entry_resource(AUDIT),
    AuditList: page([AUDIT, AUDIT], 1, audit_entry_resource, lambda row: row.seq),
    Health: health_resource("degraded", {"postgres": "ok", "redis": "unavailable"}),
    ProblemDetail: orjson.loads(
        Problem("validation_error", "bad", errors=[{"pointer": "/a", "detail": "b"}]).body()
    ),
}


def documented_models() -> set[type[BaseModel]]:
    """Every model an endpoint answers with, and every model nested in one."""
    found: set[type[BaseModel]] = {ProblemDetail}
    waiting = [e.response for e in ENDPOINTS if e.response is not None]
    waiting += [model for e in ENDPOINTS for _, model in e.other_responses]
    while waiting:
        model = waiting.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            for argument in _types_in(field.annotation):
                if isinstance(argument, type) and issubclass(argument, BaseModel):
                    waiting.append(argument)
    return found


def _types_in(annotation: Any) -> list[Any]:
    arguments = getattr(annotation, "__args__", ())
    return [annotation, *(t for argument in arguments for t in _types_in(argument))]


def test_every_documented_response_model_has_a_rendered_sample_here() -> None:
    assert documented_models() - set(RENDERED) == set()


@pytest.mark.parametrize("model", list(RENDERED), ids=lambda model: model.__name__)
def test_a_renderer_writes_exactly_its_model_fields_strictly_typed(
    model: type[BaseModel],
) -> None:
    wire = orjson.dumps(RENDERED[model])
    parsed = model.model_validate_json(wire, strict=True)
    assert orjson.loads(parsed.model_dump_json(by_alias=True)) == orjson.loads(wire)


def test_a_page_says_whether_there_is_more_and_where_it_goes_on() -> None:
    more = RENDERED[ReconciliationBreakList]
    assert (len(more["data"]), more["hasMore"], more["nextCursor"]) == (1, True, 7)
    assert RENDERED[RefundList]["hasMore"] is False and RENDERED[RefundList]["nextCursor"] is None


def test_times_are_rfc_3339_in_utc_to_the_millisecond() -> None:
    assert RENDERED[Payment]["createdAt"] == "2026-11-24T10:00:00.123Z"
    assert RENDERED[ApiKey]["revokedAt"] == "2026-11-24T10:00:00.123Z"
