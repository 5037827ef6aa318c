"""The PSP a drill or a chaos run proves paystream against, as the local
stack runs it: how its faults are turned, what it drew, and its own books
in one shape (the simulator's book: `charges` and `refunds`), so every
check reads either PSP the same way.

- the simulator: its fault knobs (`/_admin/faults`), its book (`/_book`),
  its settlement report (`/v1/settlements/{batch}`).
- Stripe (localstripe): the faults of the proxy in front of it
  (`/_proxy/faults`: timeouts, lost answers, 5xx, outages; localstripe's
  own webhooks are not faulted); its book read from localstripe's own
  records through Stripe's API (every PaymentIntent that carries a payment
  id of ours, its charge and refunds); its settlement report from its
  balance transactions, as the Stripe connector reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

import httpx
import stripe

from drill.plan import SIMULATOR_TOKENS
from paystream.cli.options import option
from psp.stripe.client import HttpxTransport
from psp.stripe.client import StripeConfig
from psp.stripe.connector import StripeConnector
from psp.stripe.mapping import PAYMENT_ID_KEY
from psp.stripe.mapping import REFUND_ID_KEY
from psp.stripe.mapping import payment_from_intent
from psp.stripe.mapping import refund_status
from stack.description import StackInfo
from stack.localstripe import LOCALSTRIPE_API_KEY

if TYPE_CHECKING:
    from drill.runner import DrillOptions

# A "timed out" call hangs past the drill's read timeouts (drill.runner):
# the simulator's 1 s, Stripe's 5 s.
SIMULATOR_HANG_MS, STRIPE_HANG_MS = 1500, 6000


@dataclass(frozen=True)
class PspFaults:
    """The PSP's faults a drill asks for (the options of `paystream drill`):
    shares of its calls and of its webhooks, and its latency. The simulator
    takes them all; the Stripe proxy those of its answers."""

    timeout_rate: float = option(0.2, "Share of PSP calls that time out.")
    lost_response_rate: float = option(0.1, "Share of PSP calls applied but never answered.")
    error_rate: float = option(0.1, "Share of PSP calls answered 5xx.")
    webhook_only_rate: float = option(0.05, "Share of PSP calls told by their webhook only.")
    webhook_duplicate_rate: float = option(0.1, "Share of PSP webhooks sent twice.")
    webhook_reorder_rate: float = option(0.1, "Share of PSP webhooks held back behind later ones.")
    latency_ms: int = 2
    jitter_ms: int = 10
    webhook_delay_ms: int = 20


class PspUnderTest(Protocol):
    name: str
    # The approving and declining tokens the workload draws from, with weights.
    tokens: tuple[tuple[str, float], ...]
    # The fates a chaos run must have seen it draw, and what was done to its callbacks.
    fates: tuple[str, ...]
    callbacks: tuple[str, ...]

    def set_faults(self, options: DrillOptions) -> None: ...

    def outage(self, seconds: float) -> None: ...

    def calm(self) -> None: ...

    def faults(self, callbacks: str) -> dict[str, int]:
        """How often it drew each fault, and what it did to its callbacks
        (each named `callbacks` and what: "webhooks duplicated")."""
        ...

    def book(self) -> dict[str, Any]: ...

    def settlement_report(self, batch: str) -> str: ...


def _answer_faults(options: DrillOptions, hang_ms: int) -> dict[str, Any]:
    """The faults of the PSP's answers, as both PSPs' knobs name them."""
    return {
        "seed": options.seed,
        "timeoutRate": options.faults.timeout_rate,
        "lostResponseRate": options.faults.lost_response_rate,
        "errorRate": options.faults.error_rate,
        "hangMs": hang_ms,
    }


@dataclass
class Simulator:
    url: str
    # The key paystream and the simulator share: for its settlement report.
    api_key: str = ""
    name: str = "simulator"
    tokens: tuple[tuple[str, float], ...] = SIMULATOR_TOKENS
    fates: tuple[str, ...] = ("timeout", "lost_response", "error", "webhook_only")
    callbacks: tuple[str, ...] = ("duplicated", "reordered")

    def _knobs(self, values: dict[str, Any]) -> None:
        httpx.patch(f"{self.url}/_admin/faults", json=values).raise_for_status()

    def set_faults(self, options: DrillOptions) -> None:
        faults = options.faults
        self._knobs(
            {
                **_answer_faults(options, SIMULATOR_HANG_MS),
                "webhookOnlyRate": faults.webhook_only_rate,
                "latencyMs": faults.latency_ms,
                "jitterMs": faults.jitter_ms,
                "webhookDelayMs": faults.webhook_delay_ms,
                "webhookDuplicateRate": faults.webhook_duplicate_rate,
                "webhookReorderRate": faults.webhook_reorder_rate,
            }
        )

    def outage(self, seconds: float) -> None:
        self._knobs({"outages": [{"startsIn": 0, "lasts": seconds}]})

    def calm(self) -> None:
        self._knobs(
            {
                "timeoutRate": 0,
                "lostResponseRate": 0,
                "errorRate": 0,
                "webhookOnlyRate": 0,
                "outages": [],
                "latencyMs": 0,
                "jitterMs": 0,
            }
        )

    def faults(self, callbacks: str) -> dict[str, int]:
        faults = httpx.get(f"{self.url}/_admin/faults").json()
        sent = {f"{callbacks} {name}": count for name, count in faults["webhooks"].items()}
        return {**faults["drawn"], **sent}

    def book(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_book", timeout=60).json()  # type: ignore[no-any-return]

    def settlement_report(self, batch: str) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.get(f"{self.url}/v1/settlements/{batch}", headers=headers, timeout=60).text


@dataclass
class LocalStripe:
    # The proxy paystream calls (its faults), and localstripe behind it (its records).
    url: str
    localstripe_url: str
    name: str = "stripe"
    # localstripe approves pm_card_visa and declines pm_card_chargeCustomerFail;
    # it has no other test PaymentMethods (psp/stripe/departures.py).
    tokens: tuple[tuple[str, float], ...] = (
        ("pm_card_visa", 0.88),
        ("pm_card_chargeCustomerFail", 0.12),
    )
    fates: tuple[str, ...] = ("timeout", "lost_response", "error")
    callbacks: tuple[str, ...] = ()

    def _knobs(self, values: dict[str, Any]) -> None:
        httpx.patch(f"{self.url}/_proxy/faults", json=values).raise_for_status()

    def set_faults(self, options: DrillOptions) -> None:
        self._knobs(_answer_faults(options, STRIPE_HANG_MS))

    def outage(self, seconds: float) -> None:
        self._knobs({"outages": [{"startsIn": 0, "lasts": seconds}]})

    def calm(self) -> None:
        self._knobs({"timeoutRate": 0, "lostResponseRate": 0, "errorRate": 0, "outages": []})

    def faults(self, callbacks: str) -> dict[str, int]:
        drawn: dict[str, int] = httpx.get(f"{self.url}/_proxy/faults").json()["drawn"]
        return drawn

    def book(self) -> dict[str, Any]:
        """localstripe's records in the simulator's book's shape: a charge per
        PaymentIntent that names a payment of ours (its amounts read as the
        connector reads them, localstripe's way of booking a partial capture
        included), and every refund that names one of ours."""
        with _localstripe(self.localstripe_url) as sdk:
            listed = sdk.v1.payment_intents.list(
                {"limit": 100, "expand": ["data.latest_charge"]}
            ).auto_paging_iter()
            intents = _ours(listed, PAYMENT_ID_KEY)
            refunds = _ours(sdk.v1.refunds.list({"limit": 100}).auto_paging_iter(), REFUND_ID_KEY)
        return {
            "charges": [_charge(intent) for intent in intents],
            "refunds": [
                {
                    "id": refund["id"],
                    "paymentId": refund["payment_intent"],
                    "amount": refund["amount"],
                    "status": refund_status(refund.get("status")).value,
                }
                for refund in refunds
            ],
        }

    def settlement_report(self, batch: str) -> str:
        connector = StripeConnector(
            StripeConfig(LOCALSTRIPE_API_KEY, api_base=self.localstripe_url, localstripe=True)
        )
        try:
            return b"".join(connector.settlement_report(batch)).decode()
        finally:
            connector.close()


def _ours(objects: Iterable[stripe.StripeObject], key: str) -> list[dict[str, Any]]:
    """The objects that carry an id of ours under `key` in their metadata."""
    found = (item.to_dict() for item in objects)
    return [item for item in found if (item.get("metadata") or {}).get(key)]


def _charge(intent: dict[str, Any]) -> dict[str, Any]:
    payment = payment_from_intent(intent)
    return {
        "id": payment.psp_reference,
        "reference": payment.reference,
        "status": payment.status.value,
        "amount": payment.amount,
        "authorizedAmount": payment.authorized_amount,
        "capturedAmount": payment.captured_amount,
        "refundedAmount": payment.refunded_amount,
    }


@contextmanager
def _localstripe(url: str) -> Iterator[stripe.StripeClient]:
    transport = HttpxTransport(timeout=60, allow_sync_methods=True)
    try:
        yield stripe.StripeClient(
            LOCALSTRIPE_API_KEY,
            base_addresses={"api": url},
            http_client=transport,
            max_network_retries=0,
        )
    finally:
        transport.close()  # type: ignore[no-untyped-call]


def psp_under_test(info: StackInfo, name: str, api_key: str) -> PspUnderTest:
    """The stack's PSP of that name, as a drill drives it. SystemExit for
    Stripe itself: a drill needs the local Stripe, whose faults it turns."""
    if name == "simulator":
        return Simulator(info.psps["simulator"], api_key)
    if name == "stripe":
        localstripe = info.psp_info.get("localstripeUrl")
        if localstripe is None:
            raise SystemExit("a drill on Stripe runs on localstripe: unset STRIPE_API_KEY")
        return LocalStripe(info.psps["stripe"], localstripe)
    raise SystemExit(f"no drill on {name}: it runs on simulator or stripe")
