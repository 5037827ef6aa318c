"""The PSP's view of a payment read as the facts the lifecycle takes: every
status of the connector protocol maps to one fact or to nothing decided."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payments.lifecycle import ActionRequired
from payments.lifecycle import Authorized
from payments.lifecycle import Captured
from payments.lifecycle import Declined
from payments.lifecycle import Voided
from psp.facts import payment_fact
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus

WAIT = timedelta(minutes=15)


def seen(status: PspPaymentStatus, **fields: object) -> PspPayment:
    values: dict[str, object] = {
        "psp_reference": "psp_1",
        "reference": "pay_1",
        "status": status,
        "amount": 1000,
        "currency": "EUR",
        "authorized_amount": 1000,
        "captured_amount": 0,
        "refunded_amount": 0,
        **fields,
    }
    return PspPayment(**values)  # type: ignore[arg-type]


FACTS = {
    PspPaymentStatus.AUTHORIZED: Authorized("psp_1", 1000),
    PspPaymentStatus.CAPTURED: Captured("psp_1", 1000, 0),
    PspPaymentStatus.DECLINED: Declined("declined", "The PSP declined."),
    PspPaymentStatus.VOIDED: Voided("psp_1"),
    PspPaymentStatus.REQUIRES_ACTION: ActionRequired("psp_1", None, WAIT),
    PspPaymentStatus.UNKNOWN: None,
}


@pytest.mark.parametrize("status", list(PspPaymentStatus))
def test_every_psp_status_is_one_fact_or_nothing_decided(status: PspPaymentStatus) -> None:
    assert payment_fact(seen(status), action_expires_in=WAIT) == FACTS[status]


def test_a_customer_to_authenticate_carries_the_psps_page_and_the_wait() -> None:
    fact = payment_fact(
        seen(PspPaymentStatus.REQUIRES_ACTION, next_action_url="https://psp.example/3ds"),
        action_expires_in=WAIT,
    )
    assert fact == ActionRequired("psp_1", "https://psp.example/3ds", WAIT)


def test_a_reader_that_starts_no_waits_takes_a_customer_to_authenticate_as_nothing_decided() -> (
    None
):
    assert payment_fact(seen(PspPaymentStatus.REQUIRES_ACTION), action_expires_in=None) is None


def test_a_failed_authentication_is_a_decline_with_the_psps_code() -> None:
    fact = payment_fact(
        seen(PspPaymentStatus.DECLINED, decline_code="authentication_failed"),
        action_expires_in=WAIT,
    )
    assert isinstance(fact, Declined) and fact.code == "authentication_failed"
