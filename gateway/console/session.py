"""Console sessions: the API key is checked once, at sign-in, and never kept
in the browser. The browser holds a random token in an HttpOnly, SameSite=Strict
cookie; Redis holds what it stands for under the token's SHA-256 (a leaked
Redis dump is not a list of live cookies). Every request loads the key again,
so a revoked key stops working at once. Forms carry the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl
from urllib.parse import quote

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole
from gateway.auth import OperatorRole
from gateway.auth import Role
from gateway.auth import allows
from gateway.auth import needs
from gateway.console.render import error_page
from gateway.console.render import see_other
from gateway.http import read_body
from gateway.types import Services
from store.db import connection
from store.errors import StoreUnavailable
from store.keys import Principal
from store.keys import find_principal_by_key_id

COOKIE = "paystream_console"
# The sign-in form's own token, before there is a session (login CSRF).
SIGN_IN_COOKIE = "paystream_console_sign_in"
PATH = "/console"
# OWASP's Session Management Cheat Sheet: an absolute timeout of 4 to 8 hours
# for an application used through a working day.
SESSION_TTL = timedelta(hours=8)
SIGN_IN_TTL = timedelta(hours=1)
# Who may sign in: a merchant's key that reads payments (the merchant's
# pages), or an operator's that reconciles (reconciliation and any ledger).
SIGN_IN_ROLES: tuple[Role, ...] = (MerchantRole.PAYMENTS_READ, OperatorRole.RECONCILIATION)
# 32 random bytes, as the API keys themselves (store.keys).
_TOKEN_BYTES = 32
# Console forms hold a token and a few words.
_MAX_FORM_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is signed in: the key as it is on this request, and the session's
    CSRF token."""

    principal: Principal
    csrf: str

    def can(self, *roles: Role) -> bool:
        return allows(self.principal, roles)


def services_of(request: Request) -> Services:
    """What the gateway is wired to: the console reads its own requests (its
    sessions are not the API's keys), so it takes them from the app."""
    services: Services = request.app.state.services
    return services


def _redis_key(token: str) -> str:
    return "console:session:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def same_token(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def open_session(redis: Redis, principal: Principal) -> str:
    """A new session for a verified key; returns the cookie's token."""
    token = new_token()
    stored = {
        "keyId": principal.key_id,
        "kind": principal.owner.kind,
        "ownerId": principal.owner.id,
        "csrf": new_token(),
    }
    await redis.set(_redis_key(token), orjson.dumps(stored), ex=SESSION_TTL)
    return token


async def close_session(redis: Redis, token: str) -> None:
    await redis.delete(_redis_key(token))


async def current_session(request: Request) -> SignedIn | None:
    """Who is signed in, or None: no cookie, an ended session, or a key that
    was revoked or lost the role to sign in since (its session ends too)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    services = services_of(request)
    raw = await services.redis.get(_redis_key(token))
    if raw is None:
        return None
    stored = orjson.loads(raw)
    async with connection(services.pool) as conn:
        principal = await find_principal_by_key_id(conn, stored["keyId"])
    if (
        principal is None
        or (principal.owner.kind, principal.owner.id) != (stored["kind"], stored["ownerId"])
        or not allows(principal, SIGN_IN_ROLES)
    ):
        await close_session(services.redis, token)
        return None
    signed_in = SignedIn(principal, stored["csrf"])
    request.state.signed_in = signed_in
    return signed_in


def set_cookie(request: Request, response: Response, name: str, value: str, ttl: timedelta) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(ttl.total_seconds()),
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=PATH, secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind the console posts); a field given
    twice keeps its first value."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = await read_body(request, _MAX_FORM_BYTES)
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(name, value)
    return form


def sign_in_location(request: Request) -> str:
    """The sign-in page, which leads back here (a GET) afterwards."""
    if request.method != "GET":
        return f"{PATH}/sign-in"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PATH}/sign-in?next={quote(here, safe='')}"


Page = Callable[[Request, SignedIn], Awaitable[Response]]


def console_page(*roles: Role) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A console page for a key that passes one of `roles`, as the API asks
    them: the others are sent to sign in, or told which key the page needs.
    A POST must carry the session's CSRF token."""

    def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                signed_in = await current_session(request)
                if signed_in is None:
                    return see_other(sign_in_location(request))
                if not signed_in.can(*roles):
                    return error_page(
                        request, 403, "Not for this key", f"This page needs {needs(roles)}."
                    )
                if request.method == "POST":
                    form = await read_form(request)
                    if not same_token(form.get("csrf"), signed_in.csrf):
                        return error_page(
                            request, 403, "Form refused", "Its CSRF token is missing or wrong."
                        )
                return await handler(request, signed_in)
            except (RedisError, StoreUnavailable):
                return unavailable(request)

        return endpoint

    return wrap


def unavailable(request: Request) -> Response:
    return error_page(
        request,
        503,
        "Console unavailable",
        "Postgres or Redis (which keeps console sessions) cannot be reached; try again shortly.",
    )
