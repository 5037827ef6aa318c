"""Running a drill's payments through the API as a careful merchant would:
every write under an Idempotency-Key, resent with the same key after any
doubt (a timeout, a 5xx, a 409 in flight), then waiting for the outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx

from drill.plan import PaymentPlan

_FINAL = frozenset({"CAPTURED", "FAILED", "REFUNDED", "CANCELED"})
# Answers after which a merchant sends the same request again, same key.
_RESEND = frozenset({409, 429, 500, 502, 503, 504})


@dataclass
class PaymentRun:
    plan: PaymentPlan
    payment_id: str | None = None
    first_answer: bytes | None = None
    resend_matched: bool | None = None
    refund_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Merchant:
    def __init__(self, client: httpx.AsyncClient, *, patience: float) -> None:
        self._client = client
        self._patience = patience

    async def post(self, path: str, body: dict[str, Any], key: str) -> httpx.Response:
        deadline = time.monotonic() + self._patience
        while True:
            try:
                response = await self._client.post(
                    path, json=body, headers={"Idempotency-Key": key}
                )
                if response.status_code not in _RESEND or (
                    response.status_code == 409
                    and response.json().get("code") != "idempotency_key_in_use"
                ):
                    return response
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"POST {path} kept failing for {self._patience:.0f} s")
            await asyncio.sleep(0.2)

    async def get(self, path: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._patience
        while True:
            try:
                response = await self._client.get(path)
                if response.status_code == 200:
                    return response.json()  # type: ignore[no-any-return]
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {path} kept failing for {self._patience:.0f} s")
            await asyncio.sleep(0.2)

    async def wait_for(
        self, path: str, done: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            current = await self.get(path)
            if done(current) or time.monotonic() > deadline:
                return current
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)


async def run_payment(merchant: Merchant, plan: PaymentPlan, settle_timeout: float) -> PaymentRun:
    run = PaymentRun(plan)
    body = {
        "orderId": plan.order_id,
        "amount": plan.amount,
        "currency": "EUR",
        "methodToken": plan.token,
        "captureMethod": plan.capture_method,
    }
    key = f"{plan.order_id}-create"
    if plan.resend:
        # Two clients racing with one key: one creates, the other must get
        # the very same answer, whichever of them wins.
        created, again = await asyncio.gather(
            merchant.post("/payments", body, key), merchant.post("/payments", body, key)
        )
    else:
        created = await merchant.post("/payments", body, key)
    if created.status_code != 201:
        run.problems.append(f"create answered {created.status_code}: {created.text[:200]}")
        return run
    run.payment_id = created.json()["paymentId"]
    run.first_answer = created.content
    if plan.resend:
        # And a third, later, as a client retrying after a lost answer.
        later = await merchant.post("/payments", body, key)
        run.resend_matched = all(
            answer.status_code == 201 and answer.content == created.content
            for answer in (again, later)
        )
    path = f"/payments/{run.payment_id}"
    payment = await merchant.wait_for(path, lambda p: p["status"] != "PENDING", settle_timeout)
    if payment["status"] == "AUTHORIZED":
        payment = await _finish_authorization(merchant, run, path, settle_timeout)
    if payment["status"] == "CAPTURED":
        await _refund(merchant, run, path, settle_timeout)
    return run


async def _finish_authorization(
    merchant: Merchant, run: PaymentRun, path: str, timeout: float
) -> dict[str, Any]:
    plan = run.plan
    if plan.then == "cancel":
        answer = await merchant.post(f"{path}/cancel", {}, f"{plan.order_id}-cancel")
    else:
        body = {"amount": plan.capture_amount} if plan.capture_amount else {}
        answer = await merchant.post(f"{path}/capture", body, f"{plan.order_id}-capture")
    if answer.status_code != 202:
        run.problems.append(f"{plan.then} answered {answer.status_code}: {answer.text[:200]}")
    return await merchant.wait_for(
        path, lambda p: p["status"] != "AUTHORIZED" or p["pendingAction"] is None, timeout
    )


async def _refund(merchant: Merchant, run: PaymentRun, path: str, timeout: float) -> None:
    for index, amount in enumerate(run.plan.refunds):
        body = {} if amount is None else {"amount": amount}
        answer = await merchant.post(f"{path}/refunds", body, f"{run.plan.order_id}-refund-{index}")
        if answer.status_code == 422:
            continue  # nothing left to refund (an earlier refund took it): a fair answer
        if answer.status_code != 201:
            run.problems.append(f"refund answered {answer.status_code}: {answer.text[:200]}")
            continue
        refund_id = answer.json()["refundId"]
        run.refund_ids.append(refund_id)
        await merchant.wait_for(
            f"/refunds/{refund_id}", lambda r: r["status"] != "PENDING", timeout
        )


async def run_workload(
    gateway_url: str,
    api_key: str,
    plans: list[PaymentPlan],
    *,
    concurrency: int,
    settle_timeout: float,
    on_done: Callable[[], None] = lambda: None,
) -> list[PaymentRun]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {api_key}"}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=gateway_url, headers=headers, limits=limits, timeout=30
    ) as client:
        merchant = Merchant(client, patience=settle_timeout)

        async def one(plan: PaymentPlan) -> PaymentRun:
            async with gate:
                try:
                    return await run_payment(merchant, plan, settle_timeout)
                finally:
                    on_done()

        return await asyncio.gather(*(one(plan) for plan in plans))


async def collect(
    gateway_url: str, api_key: str, runs: list[PaymentRun]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Our side after the run: each payment, its timeline, and every payment
    found under each order id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    payments: dict[str, dict[str, Any]] = {}
    timelines: dict[str, list[dict[str, Any]]] = {}
    by_order: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
        merchant = Merchant(client, patience=60)
        gate = asyncio.Semaphore(16)

        async def one(run: PaymentRun) -> None:
            async with gate:
                listed = await merchant.get(f"/payments?orderId={run.plan.order_id}")
                by_order[run.plan.order_id] = [p["paymentId"] for p in listed["data"]]
                if run.payment_id:
                    payments[run.payment_id] = await merchant.get(f"/payments/{run.payment_id}")
                    events = await merchant.get(f"/payments/{run.payment_id}/events")
                    timelines[run.payment_id] = events["data"]

        await asyncio.gather(*(one(run) for run in runs))
    return payments, timelines, by_order


def is_final(payment: dict[str, Any]) -> bool:
    return (
        payment["status"] in _FINAL
        and payment["pendingAction"] is None
        and payment["pendingRefundAmount"] == 0
    )
