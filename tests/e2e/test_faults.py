"""The stack under a misbehaving PSP, one fault at a time, proved by the
simulator's book and the final statuses; then a worker killed mid-call; then
a small drill with every fault at once."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from drill.runner import DrillOptions
from drill.runner import run_drill
from stack.description import StackInfo
from stack.launcher import Stack
from stack.ports import wait_until
from tests.support.faulty import knobs


def headers(info: StackInfo, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {info.api_key}", "Idempotency-Key": key or uuid.uuid4().hex}


def create(info: StackInfo, **fields: Any) -> str:
    body = {
        "orderId": uuid.uuid4().hex,
        "amount": 1000,
        "currency": "EUR",
        "methodToken": "tok_visa",
        **fields,
    }
    response = httpx.post(f"{info.gateway_url}/payments", json=body, headers=headers(info))
    assert response.status_code == 201, response.text
    return str(response.json()["paymentId"])


def read(info: StackInfo, payment_ids: list[str]) -> list[dict[str, Any]]:
    return [
        httpx.get(f"{info.gateway_url}/payments/{p}", headers=headers(info)).json()
        for p in payment_ids
    ]


def wait(
    info: StackInfo, payment_ids: list[str], statuses: set[str], timeout: float = 60
) -> list[dict[str, Any]]:
    return wait_until(
        lambda: read(info, payment_ids),
        holds=lambda payments: all(p["status"] in statuses for p in payments),
        timeout=timeout,
        what=f"every payment to be {' or '.join(sorted(statuses))}",
        interval=0.2,
    )


def book(info: StackInfo) -> dict[str, Any]:
    return httpx.get(f"{info.simulator_url}/_book").json()  # type: ignore[no-any-return]


def charges(info: StackInfo, payment_ids: list[str]) -> dict[str, int]:
    counted = {p: 0 for p in payment_ids}
    for charge in book(info)["charges"]:
        if charge["reference"] in counted and charge["status"] != "declined":
            counted[charge["reference"]] += 1
    return counted


@pytest.mark.parametrize(
    "fault",
    [{"timeoutRate": 0.5}, {"lostResponseRate": 0.5}, {"errorRate": 0.5}],
    ids=["timeouts", "lost-responses", "server-errors"],
)
def test_each_fault_kind_ends_with_every_payment_captured_and_charged_once(
    info: StackInfo, fault: dict[str, float]
) -> None:
    knobs(info, seed=11, **fault)
    payment_ids = [create(info) for _ in range(12)]
    payments = wait(info, payment_ids, {"CAPTURED"})
    assert {p["status"] for p in payments} == {"CAPTURED"}, payments
    assert set(charges(info, payment_ids).values()) == {1}
    assert book(info)["summary"]["chargedTwice"] == []


def test_refunds_under_lost_responses_never_exceed_the_capture(info: StackInfo) -> None:
    payment_ids = [create(info) for _ in range(6)]
    wait(info, payment_ids, {"CAPTURED"})
    knobs(info, seed=5, lostResponseRate=0.5, timeoutRate=0.2)
    for payment_id in payment_ids:
        for amount in (400, 600):
            response = httpx.post(
                f"{info.gateway_url}/payments/{payment_id}/refunds",
                json={"amount": amount},
                headers=headers(info),
            )
            assert response.status_code == 201
    payments = wait(info, payment_ids, {"REFUNDED"})
    assert {(p["status"], p["refundedAmount"]) for p in payments} == {("REFUNDED", 1000)}
    assert book(info)["summary"]["refundedBeyondCapture"] == []


def test_a_psp_outage_keeps_payments_pending_then_completes_them_and_readiness_says_degraded(
    info: StackInfo,
) -> None:
    # The outage lasts until the test ends it, however slow the machine is.
    knobs(info, outages=[{"startsIn": 0, "lasts": 600}])
    payment_ids = [create(info) for _ in range(8)]
    readiness = set()
    deadline = time.monotonic() + 30
    while ("degraded", "circuit_open") not in readiness and time.monotonic() < deadline:
        ready = httpx.get(f"{info.gateway_url}/readyz").json()
        readiness.add((ready["status"], ready["checks"]["psp"]))
        time.sleep(0.05)
    during = read(info, payment_ids)
    assert {p["status"] for p in during} == {"PENDING"}
    assert ("degraded", "circuit_open") in readiness
    knobs(info, outages=[])
    payments = wait(info, payment_ids, {"CAPTURED"})
    assert {p["status"] for p in payments} == {"CAPTURED"}
    assert set(charges(info, payment_ids).values()) == {1}
    assert httpx.get(f"{info.gateway_url}/readyz").json()["status"] == "ready"


def test_a_worker_killed_mid_authorization_is_finished_by_the_janitor(
    faulty_stack: Stack, info: StackInfo
) -> None:
    # No callbacks: only the janitor's re-drive can find out what happened.
    knobs(info, latencyMs=3000, webhookUrl=None)
    payment_id = create(info)
    with psycopg.connect(info.database_url) as conn:
        wait_until(
            lambda: conn.execute(
                "SELECT attempts FROM payment_operations WHERE payment_id = %s", (payment_id,)
            ).fetchone(),
            holds=lambda attempts: attempts == (1,),
            timeout=10,
            what="the worker to start the call (attempts)",
        )
    os.killpg(faulty_stack.processes["worker"].pid, signal.SIGKILL)
    faulty_stack.processes["worker"].popen.wait()  # type: ignore[union-attr]
    knobs(info, latencyMs=0)
    faulty_stack.restart("worker")
    [payment] = wait(info, [payment_id], {"CAPTURED"}, timeout=30)
    assert payment["status"] == "CAPTURED"
    assert charges(info, [payment_id]) == {payment_id: 1}
    timeline = httpx.get(
        f"{info.gateway_url}/payments/{payment_id}/events", headers=headers(info)
    ).json()
    captured = [e for e in timeline["data"] if e["type"] == "payment.captured"]
    assert captured[0]["source"] == "janitor"


def test_a_small_drill_with_every_fault_at_once_holds_every_invariant(info: StackInfo) -> None:
    report = run_drill(info, DrillOptions(payments=40, seed=3, concurrency=16, settle_timeout=120))
    failures = [f"{c.name}: {c.failures}" for c in report.checks if not c.passed]
    assert report.passed, failures
    assert (
        report.injected["timeout"] and report.injected["lost_response"] and report.injected["error"]
    )
