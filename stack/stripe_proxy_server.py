"""The Stripe proxy's HTTP server (`stack.stripe_proxy`): in a thread for
the tests, or as a process for the local stack:
`python -m stack.stripe_proxy_server --port P --upstream URL`."""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

from stack.stripe_proxy import Answer
from stack.stripe_proxy import Fault
from stack.stripe_proxy import StripeProxy
from stack.stripe_proxy import json_answer
from stack.stripe_proxy import stripe_error


def _handler(proxy: StripeProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: localstripe logs every request already

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/_proxy/"):
                self._send(self._own(body))
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            fault = proxy.next_fault(self.command)
            if fault is Fault.SERVER_ERROR:
                self._send(stripe_error(500, "api_error", "injected by the proxy"))
                return
            if fault is Fault.RATE_LIMITED:
                self._send(stripe_error(429, "rate_limit_error", "injected by the proxy"))
                return
            if fault is Fault.OUTAGE:
                self._send(stripe_error(503, "api_error", "an outage, injected by the proxy"))
                return
            answer = proxy.answer(self.command, self.path, headers, body)
            if fault is Fault.DROP:
                self.close_connection = True
                return  # nothing written: the client sees the connection close
            if fault is Fault.HANG:
                time.sleep(proxy.hang_seconds)
            with contextlib.suppress(OSError):  # the client may have given up
                self._send(answer)

        def _own(self, body: bytes) -> Answer:
            if self.path == "/_proxy/healthz" and self.command == "GET":
                up = proxy.upstream_answers()
                return json_answer(200 if up else 503, {"upstream": "up" if up else "down"})
            if self.path == "/_proxy/faults" and self.command in ("GET", "PATCH"):
                if self.command == "PATCH":
                    try:
                        proxy.set_faults(json.loads(body or b"{}"))
                    except (ValueError, TypeError, KeyError) as error:
                        return json_answer(400, {"error": str(error)})
                return json_answer(200, proxy.describe())
            return json_answer(404, {"error": "no such route"})

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


def proxy_server(proxy: StripeProxy, port: int = 0) -> ThreadingHTTPServer:
    """The proxy's HTTP server on a loopback port (0: a free one)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(proxy))
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def serving_proxy(upstream: str, *, hang_seconds: float = 2.0) -> Iterator[tuple[StripeProxy, str]]:
    """The proxy on a free loopback port, in a thread, while the block runs:
    it and its URL."""
    proxy = StripeProxy(upstream, hang_seconds=hang_seconds)
    server = proxy_server(proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        proxy.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stack.stripe_proxy_server", description=__doc__
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="localstripe's URL")
    args = parser.parse_args(argv)
    proxy = StripeProxy(args.upstream.rstrip("/"))
    server = proxy_server(proxy, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        proxy.close()


if __name__ == "__main__":
    main()
