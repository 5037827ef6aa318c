"""Bearer API keys: who is calling, and whether their key is of the kind and
carries the role a route needs.

Two kinds of key, each with its own roles. A merchant's key works on that
merchant's objects. A platform operator's key works on what spans every
merchant: the PSP's settlement reports cover them all, so reconciling them is
an operator's act. Each route names the roles it accepts; a role belongs to
one kind, so a merchant key never passes an operator route (and the other way
round), even where both kinds call a role `admin`.
"""

from __future__ import annotations

from enum import StrEnum

from starlette.requests import Request

from gateway.problems import Problem
from gateway.types import Services
from store.keys import Principal
from store.keys import PrincipalKind


class MerchantRole(StrEnum):
    PAYMENTS_WRITE = "payments:write"
    PAYMENTS_READ = "payments:read"
    REFUNDS_WRITE = "refunds:write"
    LEDGER_READ = "ledger:read"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"  # the merchant's keys and webhook endpoints


class OperatorRole(StrEnum):
    RECONCILIATION = "reconciliation"  # runs and breaks; any merchant's ledger
    ADMIN = "admin"  # operators and their keys


Role = MerchantRole | OperatorRole
# The database holds each kind's keys to these lists too (migration 0008).
MERCHANT_ROLES = tuple(role.value for role in MerchantRole)
OPERATOR_ROLES = tuple(role.value for role in OperatorRole)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="paystream"'}


def kind_of(role: Role) -> PrincipalKind:
    return PrincipalKind.MERCHANT if isinstance(role, MerchantRole) else PrincipalKind.OPERATOR


def allows(principal: Principal, roles: tuple[Role, ...]) -> bool:
    """Whether the key is of the kind of one of `roles` and holds that role."""
    return any(kind_of(r) is principal.kind and r.value in principal.roles for r in roles)


def needs(roles: tuple[Role, ...]) -> str:
    """`roles` in words: "a merchant key with the role payments:read"."""
    article = {PrincipalKind.MERCHANT: "a merchant", PrincipalKind.OPERATOR: "an operator"}
    return ", or ".join(f"{article[kind_of(r)]} key with the role {r.value}" for r in roles)


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, if that is what was sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(request: Request, services: Services, roles: tuple[Role, ...]) -> Principal:
    """The caller, if its key passes one of `roles` (and is within its rate);
    otherwise 401, 403 or 429. The router calls it for every endpoint that
    declares roles."""
    key = bearer_token(request)
    if key is None:
        raise Problem(
            "authentication_required", "send Authorization: Bearer <api key>", headers=_CHALLENGE
        )
    admitted = await services.principals.admit(key)
    principal = admitted.principal
    if principal is None:
        raise Problem("invalid_api_key", "the API key is unknown or revoked", headers=_CHALLENGE)
    if not allows(principal, roles):
        raise Problem("insufficient_role", f"this operation needs {needs(roles)}")
    services.limits.check_rate(admitted.count)
    return principal
