"""A hypothesis state machine drives the API against a model of what each
payment's status and amounts must be: any sequence of creates, captures,
cancels, refunds and resends leaves the gateway where the model says."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx
import hypothesis.strategies as st
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis.stateful import Bundle
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import consumes
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from stack.ports import wait_until
from tests.support.stack import RunningStack

# Modest in the suite; PAYSTREAM_FUZZ_EXAMPLES=200 for a long hunt.
EXAMPLES = int(os.environ.get("PAYSTREAM_FUZZ_EXAMPLES", "12"))
APPROVING = ("tok_visa", "tok_mastercard", "tok_refund_fails")
DECLINING = ("tok_decline", "tok_insufficient_funds")


@dataclass
class ModelRefund:
    amount: int
    status: str


@dataclass
class ModelPayment:
    """What the gateway must show for one payment once it is quiet."""

    payment_id: str
    order_id: str
    token: str
    amount: int
    body: dict[str, Any]
    key: str
    first_answer: bytes
    status: str
    authorized: int = 0
    captured: int = 0
    refunds: list[ModelRefund] = field(default_factory=list)

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds if r.status == "SUCCEEDED")

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded if self.status == "CAPTURED" else 0


def quiet(payment: dict[str, Any]) -> bool:
    return (
        payment["status"] != "PENDING"
        and payment["pendingAction"] is None
        and payment["pendingRefundAmount"] == 0
    )


class PaymentsMachine(RuleBasedStateMachine):
    stack: RunningStack  # set by the test before the machine runs

    payments = Bundle("payments")

    @initialize()
    def open_client(self) -> None:
        self.client = httpx.Client(base_url=self.stack.gateway, timeout=10)
        self.model: dict[str, ModelPayment] = {}

    def teardown(self) -> None:
        self.client.close()

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.stack.headers(key or new_key()))

    def read(self, model: ModelPayment) -> dict[str, Any]:
        answer = self.client.get(f"/payments/{model.payment_id}", headers=self.stack.headers())
        assert answer.status_code == 200, answer.text
        payment: dict[str, Any] = answer.json()
        return payment

    def settled(self, model: ModelPayment) -> dict[str, Any]:
        """The payment once nothing is in flight for it (bounded wait)."""
        return wait_until(
            lambda: self.read(model),
            holds=quiet,
            timeout=15,
            what=f"nothing in flight for {model.payment_id}",
            interval=0.02,
        )

    def check(self, model: ModelPayment) -> None:
        payment = self.settled(model)
        assert quiet(payment), payment
        assert (
            payment["status"],
            payment["authorizedAmount"],
            payment["capturedAmount"],
            payment["refundedAmount"],
        ) == (model.status, model.authorized, model.captured, model.refunded), payment
        refunds = self.client.get(
            f"/payments/{model.payment_id}/refunds", headers=self.stack.headers()
        ).json()["data"]
        seen = sorted((r["amount"], r["status"]) for r in refunds)
        assert seen == sorted((r.amount, r.status) for r in model.refunds), refunds

    @rule(
        target=payments,
        amount=st.integers(min_value=1, max_value=1_000_000),
        token=st.sampled_from(APPROVING + DECLINING),
        manual=st.booleans(),
    )
    def create(self, amount: int, token: str, manual: bool) -> ModelPayment:
        order_id = f"model-{uuid.uuid4().hex[:16]}"
        body = {
            "orderId": order_id,
            "amount": amount,
            "currency": "EUR",
            "methodToken": token,
            "captureMethod": "manual" if manual else "automatic",
        }
        key = new_key()
        created = self.post("/payments", body, key)
        assert created.status_code == 201, created.text
        answer = created.json()
        assert (answer["status"], answer["amount"], answer["capturedAmount"]) == (
            "PENDING",
            amount,
            0,
        )
        model = ModelPayment(
            answer["paymentId"], order_id, token, amount, body, key, created.content, "FAILED"
        )
        if token in APPROVING:
            model.status = "AUTHORIZED" if manual else "CAPTURED"
            model.authorized = amount
            model.captured = 0 if manual else amount
        self.model[model.payment_id] = model
        self.check(model)
        return model

    @rule(model=payments, amount=st.one_of(st.none(), st.integers(1, 1_000_000)))
    def capture(self, model: ModelPayment, amount: int | None) -> None:
        body = {} if amount is None else {"amount": amount}
        answer = self.post(f"/payments/{model.payment_id}/capture", body)
        if model.status != "AUTHORIZED":
            assert (answer.status_code, answer.json()["code"]) == (409, "invalid_state")
        elif amount is not None and amount > model.authorized:
            assert (answer.status_code, answer.json()["code"]) == (422, "amount_exceeds_available")
        else:
            assert answer.status_code == 202, answer.text
            model.status, model.captured = "CAPTURED", amount or model.authorized
        self.check(model)

    @rule(model=payments)
    def cancel(self, model: ModelPayment) -> None:
        answer = self.post(f"/payments/{model.payment_id}/cancel", {})
        if model.status != "AUTHORIZED":
            assert (answer.status_code, answer.json()["code"]) == (409, "invalid_state")
        else:
            assert answer.status_code == 202, answer.text
            model.status = "CANCELED"
        self.check(model)

    @rule(model=payments, amount=st.one_of(st.none(), st.integers(1, 1_000_000)))
    def refund(self, model: ModelPayment, amount: int | None) -> None:
        body = {} if amount is None else {"amount": amount}
        answer = self.post(f"/payments/{model.payment_id}/refunds", body)
        if model.status != "CAPTURED":
            assert (answer.status_code, answer.json()["code"]) == (409, "invalid_state")
        elif (amount or model.refundable) > model.refundable:
            assert (answer.status_code, answer.json()["code"]) == (422, "amount_exceeds_available")
        else:
            assert answer.status_code == 201 and answer.json()["status"] == "PENDING", answer.text
            fails = model.token == "tok_refund_fails"
            model.refunds.append(
                ModelRefund(amount or model.refundable, "FAILED" if fails else "SUCCEEDED")
            )
            if model.refunded == model.captured:
                model.status = "REFUNDED"
        self.check(model)

    @rule(model=payments)
    def resend_the_create(self, model: ModelPayment) -> None:
        again = self.post("/payments", model.body, model.key)
        assert again.status_code == 201 and again.content == model.first_answer
        assert again.headers["idempotent-replayed"] == "true"

    @rule(model=payments, amount=st.integers(1, 1_000_000))
    def reuse_the_key_for_another_request(self, model: ModelPayment, amount: int) -> None:
        other = {**model.body, "amount": amount, "orderId": f"model-{uuid.uuid4().hex[:16]}"}
        answer = self.post("/payments", other, model.key)
        assert (answer.status_code, answer.json()["code"]) == (422, "idempotency_key_reused")

    @rule(model=consumes(payments))
    def create_the_same_order_under_a_new_key(self, model: ModelPayment) -> None:
        answer = self.post("/payments", model.body)
        assert (answer.status_code, answer.json()["code"]) == (409, "order_already_exists")
        assert answer.json()["paymentId"] == model.payment_id
        listed = self.client.get(
            "/payments", params={"orderId": model.order_id}, headers=self.stack.headers()
        ).json()["data"]
        assert [p["paymentId"] for p in listed] == [model.payment_id]
        self.check(model)

    @invariant()
    def amounts_never_exceed_what_came_before(self) -> None:
        for model in getattr(self, "model", {}).values():
            assert 0 <= model.refunded <= model.captured <= model.authorized <= model.amount


def new_key() -> str:
    return uuid.uuid4().hex


def test_any_sequence_of_calls_leaves_every_payment_where_the_model_says(
    stack: RunningStack,
) -> None:
    PaymentsMachine.stack = stack
    run_state_machine_as_test(
        PaymentsMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
