"""apply_psp_webhook: apply a PSP callback from the inbox.

It goes through the same locked, forward-only writes as the PSP's answers
(`actors.outcomes`), so a late, duplicated or reordered callback, or one that
crosses our own call to the PSP for the same payment, changes a payment at
most once. It is read by the connector of the PSP that sent it, and speaks
only of that PSP's payments. A callback for a reference we do not know is
retried for a while (it may have overtaken our own commit), then kept as
`unmatched` for reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from typing import TypeVar

import dramatiq
from psycopg import Connection

from actors.errors import TryAgain
from actors.operations import drive_operation
from actors.outcomes import apply_payment_fact
from actors.outcomes import apply_refund_outcome
from actors.queues import APPLY_PSP_WEBHOOK
from actors.queues import WEBHOOKS_QUEUE
from actors.runtime import Runtime
from actors.runtime import runtime
from payments.lifecycle import Declined
from payments.operations import OperationStatus
from payments.records import PaymentRecord
from payments.records import RefundRecord
from payments.status import EventSource
from payments.status import RefundStatus
from psp.facts import payment_fact
from psp.protocol import PspPayment
from psp.protocol import PspRefund
from psp.protocol import PspRefundStatus
from psp.protocol import UnknownConnector
from store.db import connection
from store.payments import get_payment_unscoped
from store.refunds import get_refund_unscoped
from store.webhook_inbox import InboxRow
from store.webhook_inbox import count_attempt
from store.webhook_inbox import get_inbox
from store.webhook_inbox import settle_inbox
from telemetry.logs import bind_context

logger = logging.getLogger("paystream.actors.psp_webhooks")

# Tries before a callback for an unknown reference is set aside as unmatched:
# with the retry backoff that is about a minute, ample for any commit to land.
UNMATCHED_AFTER = 8

R = TypeVar("R")


@dramatiq.actor(queue_name=WEBHOOKS_QUEUE, actor_name=APPLY_PSP_WEBHOOK)
def apply_psp_webhook(inbox_id: str) -> None:
    services = runtime()
    with connection(services.pool) as conn:
        inbox = get_inbox(conn, inbox_id)
    if inbox is None or inbox.status != "pending":
        return
    try:
        connector = services.connectors[inbox.provider]
    except UnknownConnector as error:
        # Stored by a gateway that knows this PSP: kept pending (the janitor
        # comes back to it) until a worker that knows it too reads it.
        logger.error("PSP webhook %s: %s", inbox.webhook_id, error)
        raise TryAgain(f"webhook {inbox.webhook_id}: {error}") from None
    try:
        event = connector.parse_webhook(inbox.payload)
    except ValueError as error:
        _settle(services, inbox, "ignored", str(error))
        return
    if isinstance(event, PspPayment):
        _apply_payment_event(services, inbox, event)
    elif isinstance(event, PspRefund):
        _apply_refund_event(services, inbox, event)
    else:
        _settle(services, inbox, "ignored", f"event type {inbox.event_type} is not acted on")


def _apply_payment_event(services: Runtime, inbox: InboxRow, news: PspPayment) -> None:
    payment_id = news.reference
    payment = _known(services, inbox, get_payment_unscoped, payment_id)
    if payment is None:
        return
    if payment.psp != inbox.provider:
        _settle(services, inbox, "ignored", _not_its_payment(inbox, payment.psp))
        return
    bind_context(payment_id=payment_id)
    logger.info("applying the PSP's %s (webhook %s)", inbox.event_type, inbox.webhook_id)
    fact = payment_fact(news, action_expires_in=services.action_expires_in)
    if fact is None:
        _settle(services, inbox, "ignored", f"PSP status {news.status} is not acted on")
        return
    status = OperationStatus.FAILED if isinstance(fact, Declined) else OperationStatus.SUCCEEDED
    follow_ups = apply_payment_fact(
        services.pool,
        payment_id,
        fact,
        source=EventSource.WEBHOOK,
        operation_status=status,
        detail={"webhookId": inbox.webhook_id},
        on_authorization=services.card_testing.record,
        from_inbox=inbox.id,
    )
    for operation_id in follow_ups:
        drive_operation.send(operation_id)


def _apply_refund_event(services: Runtime, inbox: InboxRow, news: PspRefund) -> None:
    refund_id = news.reference
    found = _known(services, inbox, _refund_and_payment, refund_id)
    if found is None:
        return
    refund, payment = found
    if payment.psp != inbox.provider:
        _settle(services, inbox, "ignored", _not_its_payment(inbox, payment.psp))
        return
    bind_context(payment_id=refund.payment_id)
    logger.info("applying the PSP's %s (webhook %s)", inbox.event_type, inbox.webhook_id)
    if news.status is PspRefundStatus.UNKNOWN:
        _settle(services, inbox, "ignored", "refund status not acted on")
        return
    succeeded = news.status is PspRefundStatus.SUCCEEDED
    apply_refund_outcome(
        services.pool,
        refund_id,
        RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED,
        source=EventSource.WEBHOOK,
        psp_reference=news.psp_reference,
        failure_code=None if succeeded else (news.failure_code or "refund_failed"),
        detail={"webhookId": inbox.webhook_id},
        from_inbox=inbox.id,
    )


def _known(
    services: Runtime,
    inbox: InboxRow,
    find: Callable[[Connection[Any], str], R | None],
    reference: str,
) -> R | None:
    """The payment or refund a callback names; None once the callback is set
    aside as unmatched, and TryAgain while it may yet come."""
    with connection(services.pool) as conn:
        found = find(conn, reference)
    if found is None:
        _not_known_yet(services, inbox, reference)
    return found


def _refund_and_payment(
    conn: Connection[Any], refund_id: str
) -> tuple[RefundRecord, PaymentRecord] | None:
    refund = get_refund_unscoped(conn, refund_id)
    payment = get_payment_unscoped(conn, refund.payment_id) if refund else None
    return (refund, payment) if refund is not None and payment is not None else None


def _not_its_payment(inbox: InboxRow, psp: str) -> str:
    """A PSP speaks of its own payments only; another's is not its to move."""
    logger.warning(
        "PSP webhook %s from %s names %s, a payment of %s: ignored",
        inbox.webhook_id,
        inbox.provider,
        inbox.reference,
        psp,
    )
    return f"the payment is {psp}'s, not {inbox.provider}'s"


def _not_known_yet(services: Runtime, inbox: InboxRow, reference: str) -> None:
    with connection(services.pool) as conn:
        tries = count_attempt(conn, inbox.id, f"no payment or refund {reference}")
        if tries >= UNMATCHED_AFTER:
            settle_inbox(conn, inbox.id, "unmatched", f"no payment or refund {reference}")
            logger.warning(
                "PSP webhook %s for unknown %s set aside for reconciliation",
                inbox.webhook_id,
                reference,
            )
            return
    raise TryAgain(f"webhook {inbox.webhook_id}: {reference} not known (yet)")


def _settle(services: Runtime, inbox: InboxRow, status: str, error: str | None = None) -> None:
    with connection(services.pool) as conn:
        settle_inbox(conn, inbox.id, status, error)
