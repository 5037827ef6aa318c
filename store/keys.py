"""API keys, of merchants and of platform operators. Only an HMAC of each key
is ever stored; a key is shown once, when it is made. Every change to keys is
audited. A key belongs to exactly one owner, and the database refuses a key
whose roles are not its owner's kind's (migration 0008): no merchant key can
hold an operator's role, whatever the code above asks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum
from typing import Any
from typing import Literal

from payments.ids import new_id
from store.audit import record
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import fetch_all
from store.statements import fetch_one
from store.statements import fetch_value
from store.statements import store_function

KEY_PREFIX = "sk_"
# 32 random bytes: the key space of a 256-bit secret, as Stripe-style keys carry.
_KEY_BYTES = 32
_DISPLAY_PREFIX_LENGTH = 12
# A key works until its revocation time, which a rotation may set ahead.
_ACTIVE = "(revoked_at IS NULL OR revoked_at > now())"


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: str
    merchant_id: str | None
    operator_id: str | None
    key_prefix: str
    roles: list[str]
    description: str | None
    created_at: datetime
    revoked_at: datetime | None


KEY_COLUMNS = columns(ApiKeyRow)


class PrincipalKind(StrEnum):
    MERCHANT = "merchant"
    OPERATOR = "operator"


_OWNER_COLUMN = {PrincipalKind.MERCHANT: "merchant_id", PrincipalKind.OPERATOR: "operator_id"}


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose key: one merchant's, or one platform operator's."""

    kind: PrincipalKind
    id: str

    @classmethod
    def merchant(cls, merchant_id: str) -> Owner:
        return cls(PrincipalKind.MERCHANT, merchant_id)

    @classmethod
    def operator(cls, operator_id: str) -> Owner:
        return cls(PrincipalKind.OPERATOR, operator_id)

    @property
    def column(self) -> str:
        return _OWNER_COLUMN[self.kind]

    @property
    def audited_merchant(self) -> str | None:
        """The merchant an audit row about this owner's keys belongs to, if any."""
        return self.id if self.kind is PrincipalKind.MERCHANT else None


class WrongKind(Exception):
    """Code asked a principal for an owner of the other kind: a bug, since
    authentication lets a key reach only the routes of its own kind."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key, its owner and its roles."""

    key_id: str
    owner: Owner
    roles: frozenset[str]
    # When a rotated key stops working; None for a key without an end.
    ends_at: datetime | None = None

    @property
    def kind(self) -> PrincipalKind:
        return self.owner.kind

    @property
    def merchant_id(self) -> str:
        """The key's merchant. An operator's key has none, and asking fails
        loudly rather than scoping a query to nobody."""
        return self._owner_of(PrincipalKind.MERCHANT)

    @property
    def operator_id(self) -> str:
        return self._owner_of(PrincipalKind.OPERATOR)

    def _owner_of(self, kind: PrincipalKind) -> str:
        if self.owner.kind is not kind:
            raise WrongKind(f"key {self.key_id} belongs to a {self.owner.kind}, not a {kind}")
        return self.owner.id


def hash_key(key: str, pepper: bytes) -> bytes:
    """HMAC-SHA256 under a server-side pepper: a leaked table is not a list of
    keys, and a fast hash is enough because keys are long random secrets."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def key_summary(row: ApiKeyRow) -> dict[str, Any]:
    """What the audit log keeps of a key: never the key or its hash."""
    summary: dict[str, Any] = {"keyId": row.id, "prefix": row.key_prefix, "roles": row.roles}
    if row.operator_id is not None:
        summary["operatorId"] = row.operator_id
    return summary


def _insert(owner: Owner) -> str:
    return (
        f"INSERT INTO api_keys (id, {owner.column}, key_hash, key_prefix, roles, description)"
        f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {KEY_COLUMNS}"
    )


def _revoke(owner: Owner) -> str:
    return (
        f"UPDATE api_keys SET revoked_at = now() + %s WHERE id = %s AND {owner.column} = %s"
        f" AND {_ACTIVE} RETURNING {KEY_COLUMNS}"
    )


def _select(owner: Owner, one: bool) -> str:
    where = f"{owner.column} = %s" + (" AND id = %s" if one else "")
    return f"SELECT {KEY_COLUMNS} FROM api_keys WHERE {where} ORDER BY id"


def _audited(action: str, owner: Owner, row: ApiKeyRow, **after: Any) -> dict[str, Any]:
    """The audit row of a change to a key: its summary, and what `after` adds."""
    return {
        "merchant_id": owner.audited_merchant,
        "action": f"api_key.{action}",
        "object_type": "api_key",
        "object_id": row.id,
        "after": {**key_summary(row), **after},
    }


@store_function
def create_key(
    owner: Owner, roles: list[str], pepper: bytes, description: str | None = None
) -> Steps[tuple[ApiKeyRow, str]]:
    """Create a key; returns its row and the key itself, shown this once."""
    key = generate_key()
    row = yield from fetch_one(
        ApiKeyRow,
        _insert(owner),
        (
            new_id("key"),
            owner.id,
            hash_key(key, pepper),
            key[:_DISPLAY_PREFIX_LENGTH],
            roles,
            description,
        ),
    )
    assert row is not None
    yield from record.steps(**_audited("created", owner, row))
    return row, key


@store_function
def list_keys(owner: Owner) -> Statement[list[ApiKeyRow]]:
    return fetch_all(ApiKeyRow, _select(owner, one=False), (owner.id,))


@store_function
def get_key(owner: Owner, key_id: str) -> Statement[ApiKeyRow | None]:
    return fetch_one(ApiKeyRow, _select(owner, one=True), (owner.id, key_id))


@store_function
def revoke_key(
    owner: Owner, key_id: str, grace: timedelta = timedelta(0)
) -> Steps[ApiKeyRow | None]:
    """Revoke a key now, or once `grace` is over (a rotation); None when the
    owner has no such active key."""
    row = yield from fetch_one(ApiKeyRow, _revoke(owner), (grace, key_id, owner.id))
    if row is not None:
        yield from record.steps(**_audited("revoked", owner, row, revokedAt=str(row.revoked_at)))
    return row


@store_function
def key_is_active(key: str, pepper: bytes) -> Steps[bool]:
    found = yield from fetch_value(
        f"SELECT 1 FROM api_keys WHERE key_hash = %s AND {_ACTIVE}", (hash_key(key, pepper),)
    )
    return found is not None


@dataclass(frozen=True, slots=True)
class _PrincipalRow:
    id: str
    merchant_id: str | None
    operator_id: str | None
    roles: list[str]
    revoked_at: datetime | None


_PRINCIPAL = columns(_PrincipalRow)


@store_function
def find_principal(key_hash: bytes) -> Steps[Principal | None]:
    """The active key with this hash (`hash_key`), as a principal."""
    return (yield from _principal("key_hash", key_hash))


@store_function
def find_principal_by_key_id(key_id: str) -> Steps[Principal | None]:
    """The key as it is now (the console's sessions hold its id, never the
    key): None once it is revoked or its grace is over."""
    return (yield from _principal("id", key_id))


def _principal(column: Literal["key_hash", "id"], value: str | bytes) -> Steps[Principal | None]:
    """One lookup serves keys of both kinds."""
    row = yield from fetch_one(
        _PrincipalRow,
        f"SELECT {_PRINCIPAL} FROM api_keys WHERE {column} = %s AND {_ACTIVE}",
        (value,),
    )
    if row is None:
        return None
    owner = (
        Owner.merchant(row.merchant_id) if row.merchant_id else Owner.operator(str(row.operator_id))
    )
    return Principal(key_id=row.id, owner=owner, roles=frozenset(row.roles), ends_at=row.revoked_at)
