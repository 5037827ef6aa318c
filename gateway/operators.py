"""Platform operators and their keys (operator role `admin`): make an operator
with its first key, list operators, revoke an operator's key. Only an
operator can reach these: a merchant key, whatever its roles, is 403 here, and
the first operator is made from the command line (`paystream operators
create`). Audited as key management is."""

from __future__ import annotations

from gateway.api_keys import revoked
from gateway.auth import OperatorRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import listing
from gateway.problems import not_found
from gateway.resources import created_operator_resource
from gateway.resources import key_resource
from gateway.resources import operator_resource
from gateway.schemas.keys import ApiKey
from gateway.schemas.keys import CreatedOperator
from gateway.schemas.keys import CreateOperatorRequest
from gateway.schemas.keys import OperatorList
from store import operators as operator_store
from store.keys import ApiKeyRow
from store.keys import Owner
from store.operators import get_operator_key
from store.operators import list_operator_keys


async def create_operator(call: Call[CreateOperatorRequest, None]) -> Answer:
    roles = sorted(set(call.body.roles))
    operator, row, key = await operator_store.create_operator(
        call.conn, call.body.name, roles, call.services.config.key_pepper
    )
    return created_operator_resource(operator, row, key)


async def list_operators(call: Call[None, None]) -> Answer:
    operators = await operator_store.list_operators(call.conn)
    keys = await list_operator_keys(call.conn)
    by_operator: dict[str | None, list[ApiKeyRow]] = {}
    for key in keys:
        by_operator.setdefault(key.operator_id, []).append(key)
    return listing(operator_resource(op, by_operator.get(op.id, [])) for op in operators)


async def revoke_operator_key(call: Call[None, None]) -> Answer:
    """Any operator's key: operators answer for the platform together."""
    key_id = call.path["keyId"]
    found = await get_operator_key(call.conn, key_id)
    if found is None or found.operator_id is None:
        raise not_found("operator key")
    return key_resource(await revoked(call, Owner.operator(found.operator_id), key_id))


ENDPOINTS = (
    Endpoint(
        "POST",
        "/operators",
        create_operator,
        "Create an operator",
        "operators",
        ok_status=201,
        response=CreatedOperator,
        roles=(OperatorRole.ADMIN,),
        body=CreateOperatorRequest,
    ),
    Endpoint(
        "GET",
        "/operators",
        list_operators,
        "List operators",
        "operators",
        response=OperatorList,
        roles=(OperatorRole.ADMIN,),
    ),
    Endpoint(
        "DELETE",
        "/operator-keys/{keyId}",
        revoke_operator_key,
        "Revoke an operator key",
        "operators",
        response=ApiKey,
        roles=(OperatorRole.ADMIN,),
        problems=("invalid_state",),
    ),
)
