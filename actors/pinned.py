"""Requests to merchant endpoints that connect only where the SSRF check looked.

A name is resolved once; every address it resolves to must be allowed; the
request then connects to the first of them, carrying the endpoint's name in
the Host header and, over TLS, as the server name (SNI) that the certificate
is checked against. Resolving again at connect time would let a name that
answered with a public address for the check answer 127.0.0.1 for the
connection (DNS rebinding).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from payments.webhooks import address_allowed
from payments.webhooks import check_endpoint_url

# (host, port) -> the addresses it resolves to, in the resolver's order.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Refused(Exception):
    """The URL may not be called; the message says why, without the URL."""


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """Where to connect (an address), and what to call the server there."""

    url: httpx.URL
    host_header: str
    server_name: str | None  # for TLS: the name the certificate must carry


def pin(url: str, *, allow_private: bool, resolve: Resolver) -> PinnedTarget:
    try:
        host, port = check_endpoint_url(url, allow_private=allow_private)
        addresses = resolve(host, port)
    except (ValueError, OSError) as error:
        raise Refused(f"the URL cannot be used: {error}") from None
    if not addresses:
        raise Refused("the URL's host resolves to no address")
    if not all(address_allowed(a, allow_private=allow_private) for a in addresses):
        raise Refused("the URL resolves to a private or reserved address")
    original = httpx.URL(url)
    default_port = 443 if original.scheme == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal keeps its brackets in the Host header
        host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    return PinnedTarget(
        url=original.copy_with(host=addresses[0].split("%", 1)[0], port=port),
        host_header=host_header,
        server_name=host if original.scheme == "https" else None,
    )


def post_pinned(
    http: httpx.Client,
    target: PinnedTarget,
    *,
    content: str,
    headers: dict[str, str],
    timeout: float,
) -> httpx.Response:
    extensions = {"sni_hostname": target.server_name} if target.server_name else None
    return http.post(
        target.url,
        content=content,
        headers={**headers, "host": target.host_header},
        timeout=timeout,
        follow_redirects=False,
        extensions=extensions,
    )
