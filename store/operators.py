"""Platform operators: the people who run the gateway for every merchant.
They are made from the command line or by another operator, never by a
merchant, and each is made with its first key (`store.keys`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payments.ids import new_id
from store.audit import record
from store.keys import KEY_COLUMNS
from store.keys import ApiKeyRow
from store.keys import Owner
from store.keys import create_key
from store.statements import Statement
from store.statements import Steps
from store.statements import fetch_all
from store.statements import fetch_by_id
from store.statements import fetch_one
from store.statements import store_function

# `op_` names the PSP operations already.
ID_PREFIX = "opr"


@dataclass(frozen=True, slots=True)
class OperatorRow:
    id: str
    name: str
    created_at: datetime


@store_function
def create_operator(
    name: str, roles: list[str], pepper: bytes
) -> Steps[tuple[OperatorRow, ApiKeyRow, str]]:
    """An operator and its first key; the key is returned this once."""
    operator = yield from fetch_one(
        OperatorRow,
        "INSERT INTO operators (id, name) VALUES (%s, %s) RETURNING id, name, created_at",
        (new_id(ID_PREFIX), name),
    )
    assert operator is not None
    yield from record.steps(
        merchant_id=None,
        action="operator.created",
        object_id=operator.id,
        after={"operatorId": operator.id, "name": operator.name},
    )
    row, key = yield from create_key.steps(Owner.operator(operator.id), roles, pepper)
    return operator, row, key


@store_function
def list_operators() -> Statement[list[OperatorRow]]:
    return fetch_all(OperatorRow, "SELECT id, name, created_at FROM operators ORDER BY id")


@store_function
def list_operator_keys() -> Statement[list[ApiKeyRow]]:
    return fetch_all(
        ApiKeyRow,
        f"SELECT {KEY_COLUMNS} FROM api_keys WHERE operator_id IS NOT NULL"
        " ORDER BY operator_id, id",
    )


@store_function
def get_operator_key(key_id: str) -> Statement[ApiKeyRow | None]:
    return fetch_by_id(ApiKeyRow, "api_keys", key_id, where="operator_id IS NOT NULL")
