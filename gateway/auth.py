"""Bearer API keys: who is calling and whether their key carries the role."""

from __future__ import annotations

from enum import StrEnum

from starlette.requests import Request

from gateway.limits import Limits
from gateway.problems import Problem
from gateway.types import Services
from store.db import connection
from store.merchants import Principal, find_principal


class Role(StrEnum):
    PAYMENTS_WRITE = "payments:write"
    PAYMENTS_READ = "payments:read"
    REFUNDS_WRITE = "refunds:write"
    RECONCILIATION = "reconciliation"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"


ALL_ROLES = tuple(role.value for role in Role)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="paystream"'}


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, if that is what was sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(request: Request, role: Role) -> Principal:
    services: Services = request.app.state.services
    key = bearer_token(request)
    if key is None:
        raise Problem(
            "authentication_required", "send Authorization: Bearer <api key>", headers=_CHALLENGE
        )
    async with connection(services.pool) as conn:
        principal = await find_principal(conn, key, services.config.key_pepper)
    if principal is None:
        raise Problem("invalid_api_key", "the API key is unknown or revoked", headers=_CHALLENGE)
    if role not in principal.roles:
        raise Problem("insufficient_role", f"this operation needs the role {role.value}")
    limits: Limits = request.app.state.limits
    await limits.count_request(principal.key_id)
    request.state.principal = principal
    return principal
