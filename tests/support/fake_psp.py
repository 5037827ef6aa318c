"""An in-memory PSP for actor tests: scripted answers, idempotent on our key,
and a count of what was really booked."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from psp.protocol import (
    Answered,
    AuthorizeRequest,
    CallResult,
    InquiryResult,
    NotFound,
    PspPayment,
    PspPaymentStatus,
    PspRefund,
)

Script = Callable[[AuthorizeRequest], CallResult[PspPayment] | None]


@dataclass
class FakePsp:
    """Approves unless `script` answers otherwise for a call (None = book it)."""

    script: Script = lambda request: None
    booked: dict[str, PspPayment] = field(default_factory=dict)
    by_key: dict[str, CallResult[PspPayment]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    before_booking: Callable[[], None] = lambda: None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authorize(
        self, request: AuthorizeRequest, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        self.calls.append(f"authorize {idempotency_key}")
        scripted = self.script(request)
        if scripted is not None:
            return scripted
        self.before_booking()
        with self._lock:
            if idempotency_key not in self.by_key:
                payment = PspPayment(
                    psp_reference=f"psp_{len(self.booked) + 1}",
                    reference=request.reference,
                    status=PspPaymentStatus.CAPTURED
                    if request.capture
                    else PspPaymentStatus.AUTHORIZED,
                    amount=request.amount,
                    currency=request.currency,
                    authorized_amount=request.amount,
                    captured_amount=request.amount if request.capture else 0,
                    refunded_amount=0,
                )
                self.booked[payment.psp_reference] = payment
                self.by_key[idempotency_key] = Answered(payment)
            return self.by_key[idempotency_key]

    def capture(
        self, psp_reference: str, amount: int, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        raise NotImplementedError

    def void(self, psp_reference: str, *, idempotency_key: str) -> CallResult[PspPayment]:
        raise NotImplementedError

    def refund(
        self, psp_reference: str, amount: int, reference: str, *, idempotency_key: str
    ) -> CallResult[PspRefund]:
        raise NotImplementedError

    def find_payment(self, reference: str) -> InquiryResult[PspPayment]:
        found = [p for p in self.booked.values() if p.reference == reference]
        return Answered(found[0]) if found else NotFound()

    def find_refund(self, reference: str) -> InquiryResult[PspRefund]:
        return NotFound()
