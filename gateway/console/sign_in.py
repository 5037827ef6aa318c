"""Signing in to the console with an API key (checked as the API checks it,
then forgotten), and signing out. The sign-in form carries a token of its own,
matched against a cookie, so no other site can sign a browser in (login CSRF)."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import allows
from gateway.auth import needs
from gateway.console.render import page
from gateway.console.render import see_other
from gateway.console.session import COOKIE
from gateway.console.session import PATH
from gateway.console.session import SESSION_TTL
from gateway.console.session import SIGN_IN_COOKIE
from gateway.console.session import SIGN_IN_ROLES
from gateway.console.session import SIGN_IN_TTL
from gateway.console.session import SignedIn
from gateway.console.session import clear_cookie
from gateway.console.session import close_session
from gateway.console.session import console_page
from gateway.console.session import current_session
from gateway.console.session import new_token
from gateway.console.session import open_session
from gateway.console.session import read_form
from gateway.console.session import same_token
from gateway.console.session import services_of
from gateway.console.session import set_cookie
from gateway.console.session import unavailable
from store.audit import acting
from store.audit import record
from store.db import connection
from store.errors import StoreUnavailable
from store.keys import find_principal
from store.keys import hash_key

logger = logging.getLogger("paystream.console")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target and target.startswith(f"{PATH}/") and target.isprintable() and " " not in target:
        return target
    return f"{PATH}/"


def _form(request: Request, status: int, next_page: str, error: str | None = None) -> Response:
    token = new_token()
    response = page(
        request, "sign_in.html", status, sign_in_token=token, next_page=next_page, error=error
    )
    set_cookie(request, response, SIGN_IN_COOKIE, token, SIGN_IN_TTL)
    return response


async def sign_in_form(request: Request) -> Response:
    next_page = safe_next(request.query_params.get("next"))
    try:
        if await current_session(request) is not None:
            return see_other(next_page)
    except (RedisError, StoreUnavailable):
        return unavailable(request)
    return _form(request, 200, next_page)


async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    next_page = safe_next(form.get("next"))
    if not same_token(form.get("csrf"), request.cookies.get(SIGN_IN_COOKIE)):
        return _form(request, 403, next_page, "The form had expired: please sign in again.")
    services = services_of(request)
    key = form.get("api_key", "").strip()
    try:
        async with connection(services.pool) as conn:
            principal = (
                await find_principal(conn, hash_key(key, services.config.key_pepper))
                if key
                else None
            )
        if principal is None:
            logger.info("console sign-in refused: unknown or revoked key")
            return _form(request, 401, next_page, "This API key is unknown or revoked.")
        if not allows(principal, SIGN_IN_ROLES):
            return _form(request, 403, next_page, f"Signing in needs {needs(SIGN_IN_ROLES)}.")
        previous = request.cookies.get(COOKIE)
        if previous:  # a new sign-in is a new session, never the old token kept
            await close_session(services.redis, previous)
        token = await open_session(services.redis, principal)
        async with acting(services.pool, principal.key_id, request.state.request_id) as conn:
            await record(
                conn,
                merchant_id=principal.owner.audited_merchant,
                action="console.signed_in",
                object_type="api_key",
                object_id=principal.key_id,
            )
    except (RedisError, StoreUnavailable):
        return unavailable(request)
    response = see_other(next_page)
    set_cookie(request, response, COOKIE, token, SESSION_TTL)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


@console_page(*SIGN_IN_ROLES)
async def sign_out(request: Request, signed_in: SignedIn) -> Response:
    services = services_of(request)
    await close_session(services.redis, request.cookies[COOKIE])
    response = see_other(f"{PATH}/sign-in")
    clear_cookie(request, response, COOKIE)
    return response
