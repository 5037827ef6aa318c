"""A payment, a refund and a timeline event as paystream keeps them: plain
records, no I/O. The store loads rows straight into them (its column lists
are these fields) and `payments.resources` renders them for merchants."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from functools import partial
from typing import Any

from payments.ids import new_id
from payments.lifecycle import PaymentState
from payments.status import CaptureMethod
from payments.status import PaymentStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRecord:
    """A payment. One made without an id is a new payment: it gets a new id,
    and its defaults are PENDING with nothing authorized, captured or
    refunded yet."""

    id: str = field(default_factory=partial(new_id, "pay"))
    merchant_id: str
    order_id: str
    amount: int
    currency: str
    capture_method: str
    method_token: str
    # The connector that took it, for life: its token is valid at that PSP only.
    psp: str
    created_at: datetime
    updated_at: datetime
    status: str = PaymentStatus.PENDING
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    authorized_amount: int = 0
    captured_amount: int = 0
    refunded_amount: int = 0
    # Refunds in flight plus succeeded ones.
    refund_reserved_amount: int = 0
    psp_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # A capture or cancel asked for and not yet confirmed by the PSP.
    pending_action: str | None = None
    requires_reconciliation: bool = False
    reconciliation_reason: str | None = None
    # The key that created it (the card-testing guard counts per key).
    api_key_id: str | None = None
    # Customer authentication (3-D Secure): where the merchant wants the
    # customer back; while REQUIRES_ACTION, where the customer authenticates
    # and until when paystream waits for them (then asks the PSP to give up).
    return_url: str | None = None
    next_action_url: str | None = None
    action_expires_at: datetime | None = None

    def state(self) -> PaymentState:
        """What `payments.lifecycle` decides on."""
        return PaymentState(
            status=PaymentStatus(self.status),
            capture_method=CaptureMethod(self.capture_method),
            amount=self.amount,
            authorized_amount=self.authorized_amount,
            captured_amount=self.captured_amount,
            refunded_amount=self.refunded_amount,
            refund_reserved_amount=self.refund_reserved_amount,
            pending_action=self.pending_action,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundRecord:
    id: str
    payment_id: str
    merchant_id: str
    amount: int
    currency: str
    created_at: datetime
    updated_at: datetime
    status: str
    reason: str | None = None
    psp_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEvent:
    """One step of a payment's timeline: its type (`payments.events`), the
    status it moved from and to, who caused it (`EventSource`) and when."""

    id: str
    payment_id: str
    type: str
    from_status: str | None
    to_status: str
    source: str
    created_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
