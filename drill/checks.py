"""The invariants a drill proves, each a line of the report with the counts
behind it. Our side comes from the API; the truth comes from the simulator's
book."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import psycopg

from drill.receiver import Receiver
from drill.workload import PaymentRun
from drill.workload import is_final
from stack.ports import wait_until

_EXAMPLES = 5


@dataclass
class Check:
    name: str
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "counts": self.counts,
            "failures": self.failures,
        }


class Verdict:
    """What the report of a run (drill, chaos) holds besides its own details:
    the options, the checks, how long it took; and its JSON."""

    options: Any
    checks: list[Check]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def report_json(self, **details: Any) -> dict[str, Any]:
        """The verdict first, the details of the run, then every check."""
        return {
            "passed": self.passed,
            "options": asdict(self.options),
            "seconds": round(self.seconds, 1),
            **details,
            "checks": [check.to_json() for check in self.checks],
        }


def every_payment_exists_once(runs: list[PaymentRun], by_order: dict[str, list[str]]) -> Check:
    check = Check("every accepted payment exists once")
    accepted = [run for run in runs if run.payment_id]
    check.counts = {"requested": len(runs), "accepted": len(accepted)}
    for run in runs:
        found = by_order.get(run.plan.order_id, [])
        expected = [run.payment_id] if run.payment_id else []
        if found != expected:
            check.fail(f"order {run.plan.order_id}: expected {expected}, found {found}")
        check.failures.extend(f"{run.plan.order_id}: {p}" for p in run.problems)
    return check


def every_payment_is_final(payments: dict[str, dict[str, Any]]) -> Check:
    check = Check("every payment is final, or flagged for reconciliation with a reason")
    statuses = Counter(p["status"] for p in payments.values())
    flagged = [p for p in payments.values() if p["requiresReconciliation"]]
    check.counts = {**dict(sorted(statuses.items())), "flagged": len(flagged)}
    for payment in payments.values():
        if payment["requiresReconciliation"]:
            if not payment["reconciliationReason"]:
                check.fail(f"{payment['paymentId']} flagged without a reason")
        elif not is_final(payment):
            check.fail(
                f"{payment['paymentId']} is {payment['status']} "
                f"(pending action {payment['pendingAction']}, "
                f"pending refunds {payment['pendingRefundAmount']})"
            )
    return check


def book_charges_each_payment_at_most_once(book: dict[str, Any]) -> Check:
    check = Check("the PSP's book: at most one charge per payment")
    approved = Counter(c["reference"] for c in book["charges"] if c["status"] != "declined")
    check.counts = {"charges": len(book["charges"]), "approved": sum(approved.values())}
    for reference, count in approved.items():
        if count > 1:
            check.fail(f"{reference} charged {count} times")
    return check


def book_amounts_are_consistent(book: dict[str, Any]) -> Check:
    check = Check("the PSP's book: captured <= authorized <= amount, refunds <= captured")
    refunded: Counter[str] = Counter()
    for refund in book["refunds"]:
        if refund["status"] == "succeeded":
            refunded[refund["paymentId"]] += refund["amount"]
    check.counts = {"charges": len(book["charges"]), "refunds": len(book["refunds"])}
    for charge in book["charges"]:
        if not charge["capturedAmount"] <= charge["authorizedAmount"] <= charge["amount"]:
            check.fail(f"{charge['id']}: captured/authorized/amount out of order")
        if (
            refunded[charge["id"]] != charge["refundedAmount"]
            or refunded[charge["id"]] > charge["capturedAmount"]
        ):
            check.fail(f"{charge['id']}: refunds {refunded[charge['id']]} vs captured")
    return check


_BOOK_STATUS = {
    "CAPTURED": "captured",
    "REFUNDED": "captured",
    "CANCELED": "voided",
    "AUTHORIZED": "authorized",
}


def our_books_agree_with_the_psp(
    payments: dict[str, dict[str, Any]], book: dict[str, Any]
) -> Check:
    check = Check("our statuses and amounts agree with the PSP's book")
    charges: dict[str, list[dict[str, Any]]] = {}
    for charge in book["charges"]:
        if charge["status"] != "declined":
            charges.setdefault(charge["reference"], []).append(charge)
    agreed = 0
    for payment_id, payment in payments.items():
        mine = charges.get(payment_id, [])
        if payment["status"] in ("FAILED", "PENDING"):
            if mine and payment["status"] == "FAILED":
                check.fail(f"{payment_id} FAILED but the PSP charged it")
            agreed += not mine
            continue
        if len(mine) != 1:
            check.fail(f"{payment_id} {payment['status']} with {len(mine)} charges at the PSP")
            continue
        charge = mine[0]
        ours = (
            _BOOK_STATUS.get(payment["status"]),
            payment["capturedAmount"],
            payment["refundedAmount"],
        )
        theirs = (charge["status"], charge["capturedAmount"], charge["refundedAmount"])
        if ours != theirs:
            check.fail(f"{payment_id}: ours {ours}, PSP {theirs}")
        else:
            agreed += 1
    check.counts = {"payments": len(payments), "agree": agreed}
    return check


def resends_got_the_original_answer(runs: list[PaymentRun]) -> Check:
    check = Check("every idempotent resend got the original answer")
    resent = [run for run in runs if run.resend_matched is not None]
    check.counts = {"resends": len(resent), "matched": sum(bool(r.resend_matched) for r in resent)}
    for run in resent:
        if not run.resend_matched:
            check.fail(f"{run.payment_id}: the resend answered differently")
    return check


def timelines_explain_every_status(
    payments: dict[str, dict[str, Any]], timelines: dict[str, list[dict[str, Any]]]
) -> Check:
    check = Check("every payment's timeline explains how it got there")
    sources: Counter[str] = Counter()
    for payment_id, payment in payments.items():
        events = timelines.get(payment_id, [])
        if not events or events[0]["type"] != "payment.created":
            check.fail(f"{payment_id}: the timeline does not start with payment.created")
            continue
        status = events[0]["toStatus"]
        for event in events[1:]:
            if event["fromStatus"] != status:
                check.fail(
                    f"{payment_id}: {event['type']} from {event['fromStatus']}, was {status}"
                )
                break
            if event["toStatus"] != status:
                sources[event["source"]] += 1
            status = event["toStatus"]
        if status != payment["status"]:
            check.fail(
                f"{payment_id}: the timeline ends at {status}, the payment is {payment['status']}"
            )
    check.counts = {
        "payments": len(payments),
        **{f"moves by {s}": n for s, n in sorted(sources.items())},
    }
    return check


def run_checks(
    runs: list[PaymentRun],
    payments: dict[str, dict[str, Any]],
    timelines: dict[str, list[dict[str, Any]]],
    by_order: dict[str, list[str]],
    book: dict[str, Any],
) -> list[Check]:
    checks = [
        every_payment_exists_once(runs, by_order),
        every_payment_is_final(payments),
        book_charges_each_payment_at_most_once(book),
        book_amounts_are_consistent(book),
        our_books_agree_with_the_psp(payments, book),
        resends_got_the_original_answer(runs),
        timelines_explain_every_status(payments, timelines),
    ]
    for check in checks:
        del check.failures[_EXAMPLES * 4 :]
    return checks


def every_event_reached_the_merchant(
    events: list[str], receiver: Receiver, endpoint_id: str, database_url: str, wait: float = 120
) -> Check:
    """Deliveries run on their own schedule: wait for them, bounded."""
    check = Check("every event reached the merchant's endpoint at least once, signed")
    expected = set(events)
    with contextlib.suppress(TimeoutError):  # what never came is this check's failure
        wait_until(
            lambda: expected <= receiver.verified_event_ids(),
            timeout=wait,
            what="every event at the merchant's endpoint",
            interval=0.2,
        )
    received = receiver.verified_event_ids()
    with psycopg.connect(database_url) as conn:
        dead = conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %s AND status = 'dead'",
            (endpoint_id,),
        ).fetchone()
    check.counts = {
        "events": len(expected),
        "received": len(expected & received),
        "deliveries": len(receiver.deliveries),
        "failed tries": sum(receiver.tries.values()) - len(receiver.deliveries),
        "dead letters": int(dead[0]) if dead else 0,
    }
    for event_id in sorted(expected - received)[:_EXAMPLES]:
        check.fail(f"{event_id} never reached the endpoint")
    if receiver.unverified():
        check.fail(f"{receiver.unverified()} deliveries failed signature verification")
    return check
