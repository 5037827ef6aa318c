"""Webhook secrets, and where merchant webhooks may go.

Where they may go: paystream makes these requests from inside
its network, so an endpoint URL is an SSRF risk (OWASP API7): only https to
public addresses, unless a local development stack allows private ones."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from urllib.parse import urlsplit


def check_endpoint_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    """The host and port to reach, or ValueError saying why not."""
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise ValueError(f"the URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username or parts.password:
        raise ValueError("the URL must not carry credentials")
    if parts.fragment:
        raise ValueError("the URL must not have a fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError("the URL's port is not valid") from None
    return parts.hostname, port


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Public unicast addresses only; loopback, private, link-local and the
    like too when `allow_private`."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


def new_webhook_secret() -> str:
    """Standard Webhooks: `whsec_` and the base64 of 24 to 64 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
