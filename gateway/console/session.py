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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, quote

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Role
from gateway.console.render import error_page, see_other
from gateway.http import read_body
from gateway.types import Services
from store.db import connection
from store.errors import StoreUnavailable
from store.merchants import Principal, find_principal_by_key_id

COOKIE = "paystream_console"
# The sign-in form's own token, before there is a session (login CSRF).
SIGN_IN_COOKIE = "paystream_console_sign_in"
PATH = "/console"
# OWASP's Session Management Cheat Sheet: an absolute timeout of 4 to 8 hours
# for an application used through a working day.
SESSION_TTL = timedelta(hours=8)
SIGN_IN_TTL = timedelta(hours=1)
# 32 random bytes, as the API keys themselves (store.merchants).
_TOKEN_BYTES = 32
# Console forms hold a token and a few words.
_MAX_FORM_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is signed in: the key as it is on this request, and the session's
    CSRF token."""

    principal: Principal
    csrf: str

    def can(self, role: Role) -> bool:
        return role.value in self.principal.roles


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
    stored = {"keyId": principal.key_id, "merchantId": principal.merchant_id, "csrf": new_token()}
    await redis.set(_redis_key(token), orjson.dumps(stored), ex=SESSION_TTL)
    return token


async def close_session(redis: Redis, token: str) -> None:
    await redis.delete(_redis_key(token))


async def current_operator(request: Request) -> Operator | None:
    """The signed-in operator, or None: no cookie, an ended session, or a key
    that was revoked or lost the read role since (its session ends too)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    services: Services = request.app.state.services
    raw = await services.redis.get(_redis_key(token))
    if raw is None:
        return None
    stored = orjson.loads(raw)
    async with connection(services.pool) as conn:
        principal = await find_principal_by_key_id(conn, stored["keyId"])
    if (
        principal is None
        or principal.merchant_id != stored["merchantId"]
        or Role.PAYMENTS_READ.value not in principal.roles
    ):
        await close_session(services.redis, token)
        return None
    operator = Operator(principal, stored["csrf"])
    request.state.operator = operator
    return operator


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


Page = Callable[[Request, Operator], Awaitable[Response]]


def console_page(role: Role) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A console page for operators whose key has `role`: the others are sent
    to sign in, or told which role the page needs. A POST must carry the
    session's CSRF token."""

    def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                operator = await current_operator(request)
                if operator is None:
                    return see_other(sign_in_location(request))
                if not operator.can(role):
                    return error_page(
                        request, 403, "Not for this key", f"This page needs the role {role.value}."
                    )
                if request.method == "POST":
                    form = await read_form(request)
                    if not same_token(form.get("csrf"), operator.csrf):
                        return error_page(
                            request, 403, "Form refused", "Its CSRF token is missing or wrong."
                        )
                return await handler(request, operator)
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
