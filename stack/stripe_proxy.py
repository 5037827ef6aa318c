"""A proxy in front of localstripe that keeps Stripe's idempotency rules and
injects the faults of a real network on request.

localstripe ignores `Idempotency-Key`; Stripe does not. So that a retry here
means what it means at Stripe, the proxy keeps Stripe's documented rules for
POSTs that carry a key: the first answer of a request that ran (its status
and body, a card decline included, a validation failure not) is kept and
replayed, marked `Idempotent-Replayed: true`, to every later request with
that key; the same key with other parameters is refused (400,
idempotency_error); the same key while its first request runs is 409. A
request the proxy failed on its own (500, 429, an outage) never reached
localstripe and is not kept. `paystream up --psp stripe` puts it between
paystream and localstripe; the tests put it between a connector and theirs.

Each request to the API meets a fault, planned (`plan`, the tests), the
outage under way, or, for a write (POST), one drawn at the configured rates
(`PATCH /_proxy/faults`, the drill), else plain forwarding. Reads are not
drawn for: an inquiry that has no Stripe id reads the recent intents page by
page, and localstripe lists them oldest first with no search, so one
inquiry is many reads here where at Stripe it is one; faulting each would
fault inquiries many times over Stripe's rate.

    FORWARD      pass it on, pass the answer back
    HANG         pass it on (it takes effect), hold the answer past the
                 client's read timeout: the client sees a timeout
    DROP         pass it on (it takes effect), close the connection without
                 answering: the client sees a dropped connection
    SERVER_ERROR answer 500 without passing it on
    RATE_LIMITED answer 429 without passing it on
    OUTAGE       inside an outage window: 503 without passing it on

localstripe has no search either: the proxy answers Stripe's
`GET /v1/payment_intents/search` for queries of the form
`metadata['KEY']:'VALUE'` from the metadata of every PaymentIntent whose
creation it passed on (retrieving each from localstripe, `expand` kept).
Stripe's search trails writes by up to a minute; this one does not.

Its own routes: `GET|PATCH /_proxy/faults` (the knobs, and how many requests
met each fault) and `GET /_proxy/healthz` (200 once localstripe answers).
Its HTTP server, and how to run it as a process: `stack.stripe_proxy_server`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx


class Fault(StrEnum):
    FORWARD = "normal"
    HANG = "timeout"
    DROP = "lost_response"
    SERVER_ERROR = "error"
    RATE_LIMITED = "rate_limited"
    OUTAGE = "outage"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    replayed: bool = False


@dataclass(frozen=True)
class FaultRates:
    """The share of requests that meet each fault, drawn from `seed`."""

    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    error_rate: float = 0.0
    rate_limited_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.timeout_rate, self.lost_response_rate, self.error_rate)
        if any(not 0.0 <= rate <= 1.0 for rate in (*rates, self.rate_limited_rate)):
            raise ValueError("a fault rate is between 0 and 1")
        if sum(rates) + self.rate_limited_rate > 1.0:
            raise ValueError("the fault rates add up to more than 1")


# The JSON names of the knobs, as the simulator's `/_admin/faults` spells them.
_KNOBS = {
    "timeoutRate": "timeout_rate",
    "lostResponseRate": "lost_response_rate",
    "errorRate": "error_rate",
    "rateLimitedRate": "rate_limited_rate",
    "seed": "seed",
}


@dataclass
class StripeProxy:
    upstream: str
    # Longer than the read timeout of the connector behind it.
    hang_seconds: float = 2.0
    rates: FaultRates = field(default_factory=FaultRates)
    # What reached localstripe, as "METHOD /path".
    forwarded: list[str] = field(default_factory=list)
    replayed: int = 0
    drawn: collections.Counter[str] = field(default_factory=collections.Counter)
    _outage_until: float = 0.0
    _random: random.Random = field(default_factory=random.Random)
    _plan: collections.deque[Fault] = field(default_factory=collections.deque)
    _kept: dict[str, tuple[str, Answer]] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)
    # (metadata key, value) -> the PaymentIntents created with it: the search.
    _intents_by_metadata: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def plan(self, *faults: Fault) -> None:
        """The fates of the next requests, in order; drawn at the rates after."""
        with self._lock:
            self._plan.extend(faults)

    def set_faults(self, changes: dict[str, Any]) -> None:
        """Change the knobs (JSON names): rates, `seed` (restarts the draw),
        `hangMs`, `outages` ([{"startsIn": s, "lasts": s}], the last one
        given counts)."""
        with self._lock:
            rates = {_KNOBS[name]: value for name, value in changes.items() if name in _KNOBS}
            self.rates = replace(self.rates, **rates)
            if "seed" in changes:
                self._random = random.Random(self.rates.seed)
            if "hangMs" in changes:
                self.hang_seconds = float(changes["hangMs"]) / 1000
            if "outages" in changes:
                now = time.monotonic()
                self._outage_until = max(
                    (now + float(o.get("startsIn", 0)) + float(o["lasts"]))
                    for o in changes["outages"] or [{"lasts": 0}]
                )

    def describe(self) -> dict[str, Any]:
        with self._lock:
            knobs = {name: asdict(self.rates)[attr] for name, attr in _KNOBS.items()}
            return {
                **knobs,
                "hangMs": round(self.hang_seconds * 1000),
                "outageEndsIn": max(0.0, round(self._outage_until - time.monotonic(), 3)),
                "drawn": dict(self.drawn),
                "forwarded": len(self.forwarded),
                "replayed": self.replayed,
            }

    def next_fault(self, method: str = "POST") -> Fault:
        with self._lock:
            if self._plan:
                fault = self._plan.popleft()
            elif time.monotonic() < self._outage_until:
                fault = Fault.OUTAGE
            elif method == "POST":
                fault = self._roll()
            else:
                fault = Fault.FORWARD
            self.drawn[fault.value] += 1
            return fault

    def _roll(self) -> Fault:
        roll = self._random.random()
        for fault, rate in (
            (Fault.HANG, self.rates.timeout_rate),
            (Fault.DROP, self.rates.lost_response_rate),
            (Fault.SERVER_ERROR, self.rates.error_rate),
            (Fault.RATE_LIMITED, self.rates.rate_limited_rate),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return Fault.FORWARD

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """What localstripe answers, with Stripe's idempotency rules kept."""
        if method == "GET" and urlsplit(path).path == "/v1/payment_intents/search":
            return self._search(path, headers)
        key = headers.get("idempotency-key") if method == "POST" else None
        if key is None:
            return self._forward(method, path, headers, body)
        fingerprint = hashlib.sha256(f"{method} {path}".encode() + b"\n" + body).hexdigest()
        with self._lock:
            if key in self._kept:
                first, kept = self._kept[key]
                if first != fingerprint:
                    return stripe_error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same"
                        " parameters they were first used with.",
                    )
                self.replayed += 1
                return replace(kept, replayed=True)
            if key in self._running:
                return stripe_error(
                    409,
                    "idempotency_error",
                    "There is currently another in-progress request using this idempotency key.",
                )
            self._running.add(key)
        try:
            answer = self._forward(method, path, headers, body)
        finally:
            with self._lock:
                self._running.discard(key)
        # Stripe keeps the result of a request that ran; a request refused
        # before running (its parameters invalid) is not kept.
        if answer.status < 400 or answer.status == 402 or answer.status >= 500:
            with self._lock:
                self._kept[key] = (fingerprint, answer)
        return answer

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        passed = {
            k: v for k, v in headers.items() if k not in ("host", "content-length", "connection")
        }
        with self._lock:
            self.forwarded.append(f"{method} {path.split('?')[0]}")
        response = self._client.request(method, self.upstream + path, headers=passed, content=body)
        if method == "POST" and path == "/v1/payment_intents" and response.status_code == 200:
            self._index(response.json())
        return Answer(
            response.status_code,
            response.headers.get("content-type", "application/json"),
            response.content,
        )

    def _index(self, intent: dict[str, Any]) -> None:
        with self._lock:
            for pair in (intent.get("metadata") or {}).items():
                self._intents_by_metadata.setdefault(pair, []).append(intent["id"])

    def _search(self, path: str, headers: dict[str, str]) -> Answer:
        """Stripe's search result for `metadata['KEY']:'VALUE'`, the intents
        retrieved from localstripe with the search's `expand` (of `data.X`)."""
        query = parse_qs(urlsplit(path).query)
        matched = _METADATA_QUERY.fullmatch(query.get("query", [""])[0])
        if matched is None:
            return stripe_error(400, "invalid_request_error", "only metadata['KEY']:'VALUE'")
        with self._lock:
            ids = list(self._intents_by_metadata.get((matched["key"], matched["value"]), []))
        expand = httpx.QueryParams(
            [
                ("expand[]", name.removeprefix("data."))
                for field_name, names in query.items()
                if field_name.startswith("expand")
                for name in names
            ]
        )
        passed = {"authorization": headers.get("authorization", "")}
        found = []
        for intent_id in ids:
            response = self._client.get(
                f"{self.upstream}/v1/payment_intents/{intent_id}",
                params=expand,
                headers=passed,
            )
            if response.status_code != 200:
                return Answer(response.status_code, "application/json", response.content)
            found.append(response.json())
        result = {"object": "search_result", "url": "/v1/payment_intents/search", "data": found}
        return json_answer(200, {**result, "has_more": False, "next_page": None})

    def upstream_answers(self) -> bool:
        try:
            self._client.get(f"{self.upstream}/v1/balance", timeout=2)
        except httpx.HTTPError:
            return False
        return True

    def close(self) -> None:
        self._client.close()


# The one shape of Stripe's search language the proxy answers.
_METADATA_QUERY = re.compile(r"metadata\['(?P<key>[^']+)'\]:'(?P<value>[^']*)'")


def stripe_error(status: int, kind: str, message: str) -> Answer:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    return Answer(status, "application/json", body)


def json_answer(status: int, value: Any) -> Answer:
    return Answer(status, "application/json", json.dumps(value).encode())
