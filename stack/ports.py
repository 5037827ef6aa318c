"""Free loopback ports, and waiting for something to come true (a server to
answer, a payment to settle): one way to wait, for the launcher, the tooling
and the tests alike."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each stays bound until all are chosen, so
    the system cannot hand out the same one twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    holds: Callable[[T], object] = bool,
    interval: float = 0.05,
) -> T:
    """Call `probe` until `holds` its answer (by default: until the answer is
    true), and return that answer. After `timeout` seconds, TimeoutError that
    says what was awaited and what was seen last."""
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if holds(seen):
            return seen
        if time.monotonic() >= deadline:
            last = "" if isinstance(seen, bool) else f"; last seen: {seen!r}"
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g} s{last}")
        time.sleep(interval)


def answers(url: str, *, verify: ssl.SSLContext | bool = True) -> int | None:
    """The status code `url` answers a GET with, or None while nothing answers
    (refused, reset, timed out)."""
    try:
        return httpx.get(url, timeout=1, verify=verify).status_code
    except httpx.HTTPError:
        return None


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
