"""A fault-injecting proxy between the Stripe connector and localstripe.

Each request meets the next planned fault (then plain forwarding):

    FORWARD      pass it on, pass the answer back
    HANG         pass it on (it takes effect), hold the answer past the
                 client's read timeout: the client sees a timeout
    DROP         pass it on (it takes effect), close the connection without
                 answering: the client sees a dropped connection
    SERVER_ERROR answer 500 without passing it on
    RATE_LIMITED answer 429 without passing it on

localstripe ignores `Idempotency-Key`; Stripe does not. So that a retry here
means what it means at Stripe, the proxy keeps Stripe's documented rules for
POSTs that carry a key: the first answer of a request that ran (its status
and body, a card decline included, a validation failure not) is kept and
replayed, marked `Idempotent-Replayed: true`, to every later request with
that key; the same key with other parameters is refused (400,
idempotency_error); the same key while its first request runs is 409. A
request the proxy failed on its own (500, 429) never reached localstripe
and is not kept.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class Fault(StrEnum):
    FORWARD = "forward"
    HANG = "hang"
    DROP = "drop"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    replayed: bool = False


@dataclass
class StripeProxy:
    upstream: str
    # Longer than the read timeout of the connector under test.
    hang_seconds: float = 2.0
    # What reached localstripe, as "METHOD /path".
    forwarded: list[str] = field(default_factory=list)
    replayed: int = 0
    _plan: collections.deque[Fault] = field(default_factory=collections.deque)
    _kept: dict[str, tuple[str, Answer]] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, *faults: Fault) -> None:
        """The fates of the next requests, in order; plain forwarding after."""
        with self._lock:
            self._plan.extend(faults)

    def next_fault(self) -> Fault:
        with self._lock:
            return self._plan.popleft() if self._plan else Fault.FORWARD

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """What localstripe answers, with Stripe's idempotency rules kept."""
        key = headers.get("idempotency-key") if method == "POST" else None
        if key is None:
            return self._forward(method, path, headers, body)
        fingerprint = hashlib.sha256(f"{method} {path}".encode() + b"\n" + body).hexdigest()
        with self._lock:
            if key in self._kept:
                first, kept = self._kept[key]
                if first != fingerprint:
                    return _stripe_error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    )
                self.replayed += 1
                return replace(kept, replayed=True)
            if key in self._running:
                return _stripe_error(
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
        response = httpx.request(
            method, self.upstream + path, headers=passed, content=body, timeout=10
        )
        return Answer(
            response.status_code,
            response.headers.get("content-type", "application/json"),
            response.content,
        )


def _stripe_error(status: int, kind: str, message: str) -> Answer:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    return Answer(status, "application/json", body)


def _handler(proxy: StripeProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows what the tests say

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            fault = proxy.next_fault()
            if fault is Fault.SERVER_ERROR:
                self._send(_stripe_error(500, "api_error", "injected by the test proxy"))
                return
            if fault is Fault.RATE_LIMITED:
                self._send(_stripe_error(429, "rate_limit_error", "injected by the test proxy"))
                return
            answer = proxy.answer(self.command, self.path, headers, body)
            if fault is Fault.DROP:
                self.close_connection = True
                return  # nothing written: the client sees the connection close
            if fault is Fault.HANG:
                time.sleep(proxy.hang_seconds)
            with contextlib.suppress(OSError):  # the client may have given up
                self._send(answer)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            if answer.replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
            self.close_connection = True

    return Handler


@contextlib.contextmanager
def serving_proxy(upstream: str, *, hang_seconds: float = 2.0) -> Iterator[tuple[StripeProxy, str]]:
    """The proxy on a free loopback port while the block runs: it and its URL."""
    proxy = StripeProxy(upstream, hang_seconds=hang_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
