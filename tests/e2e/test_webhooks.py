"""Webhooks both ways on a running stack: PSP callbacks duplicated, reordered
and sometimes the only word on an outcome; a merchant endpoint that fails its
first tries; every event delivered, verifiable, none missing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from drill.psps import PspFaults
from drill.receiver import serving_receiver
from drill.runner import DrillOptions
from drill.runner import register_endpoint
from drill.runner import run_drill
from stack.description import StackInfo
from stack.ports import wait_until
from tests.support.faulty import knobs


def create(info: StackInfo, **fields: Any) -> str:
    body = {
        "orderId": uuid.uuid4().hex,
        "amount": 700,
        "currency": "EUR",
        "methodToken": "tok_visa",
        **fields,
    }
    headers = {"Authorization": f"Bearer {info.api_key}", "Idempotency-Key": uuid.uuid4().hex}
    response = httpx.post(f"{info.gateway_url}/payments", json=body, headers=headers)
    assert response.status_code == 201
    return str(response.json()["paymentId"])


def get(info: StackInfo, path: str) -> Any:
    return httpx.get(
        f"{info.gateway_url}{path}", headers={"Authorization": f"Bearer {info.api_key}"}
    ).json()


def test_when_only_webhooks_tell_the_outcome_payments_still_settle_once(info: StackInfo) -> None:
    knobs(info, webhookOnlyRate=1.0, webhookOnlyHoldMs=30_000, webhookDuplicateRate=0.5)
    payment_ids = [create(info) for _ in range(5)]
    wait_until(
        lambda: {p: get(info, f"/payments/{p}")["status"] for p in payment_ids},
        holds=lambda statuses: set(statuses.values()) == {"CAPTURED"},
        timeout=30,
        what="every payment to be CAPTURED",
        interval=0.2,
    )
    for payment_id in payment_ids:
        timeline = get(info, f"/payments/{payment_id}/events")["data"]
        captured = [e for e in timeline if e["type"] == "payment.captured"]
        assert len(captured) == 1 and captured[0]["source"] == "webhook", timeline
    book = httpx.get(f"{info.simulator_url}/_book").json()
    assert book["summary"]["chargedTwice"] == []


def test_merchant_deliveries_survive_a_failing_endpoint_and_verify_with_the_library(
    info: StackInfo,
) -> None:
    with serving_receiver() as receiver:
        receiver.fail_first = 2
        endpoint_id = register_endpoint(info, receiver)
        payment_id = create(info)
        deliveries = receiver.wait_for(2, timeout=30)  # payment.created and payment.captured
        assert {d.headers["webhook-id"] for d in deliveries} == {
            e["eventId"] for e in get(info, f"/payments/{payment_id}/events")["data"]
        }
        assert all(d.verified for d in deliveries)
        assert all(receiver.tries[d.headers["webhook-id"]] == 3 for d in deliveries)
        httpx.delete(
            f"{info.gateway_url}/webhook-endpoints/{endpoint_id}",
            headers={"Authorization": f"Bearer {info.api_key}"},
        )


def test_with_a_third_of_callbacks_duplicated_and_reordered_every_payment_and_event_lands(
    info: StackInfo,
) -> None:
    faults = PspFaults(
        timeout_rate=0.1,
        lost_response_rate=0.1,
        error_rate=0.05,
        webhook_only_rate=0.15,
        webhook_duplicate_rate=0.3,
        webhook_reorder_rate=0.3,
    )
    options = DrillOptions(
        payments=40, seed=4, concurrency=16, faults=faults, endpoint_failures=2, settle_timeout=120
    )
    report = run_drill(info, options)
    failures = [f"{c.name}: {c.failures}" for c in report.checks if not c.passed]
    assert report.passed, failures
    assert report.injected["webhook_only"] and report.injected["webhooks duplicated"]
    assert report.injected["webhooks reordered"]
