"""Platform operators and their keys (operator role `admin`): make an operator
with its first key, list operators, revoke an operator's key. Only an
operator can reach these: a merchant key, whatever its roles, is 403 here, and
the first operator is made from the command line (`paystream operators
create`). Audited as key management is."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import OperatorRole, authenticate
from gateway.http import json_response, listing, read_json_object, validate
from gateway.openapi import Endpoint
from gateway.problems import Problem
from gateway.resources import created_operator_resource, key_resource, operator_resource
from gateway.schemas.keys import ApiKey, CreatedOperator, CreateOperatorRequest, OperatorList
from gateway.types import Services
from store.audit import acting_async
from store.db import connection
from store.keys import Owner, revoke_key_async
from store.operators import (
    create_operator_async,
    get_operator_key_async,
    list_operator_keys_async,
    list_operators_async,
)
from store.rows import ApiKeyRow


async def create_operator(request: Request) -> Response:
    principal = await authenticate(request, OperatorRole.ADMIN)
    services: Services = request.app.state.services
    command = validate(
        CreateOperatorRequest, await read_json_object(request, services.config.max_body_bytes)
    )
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        operator, row, key = await create_operator_async(
            conn, command.name, sorted(set(command.roles)), services.config.key_pepper
        )
    return json_response(created_operator_resource(operator, row, key), 201)


async def list_operators(request: Request) -> Response:
    await authenticate(request, OperatorRole.ADMIN)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        operators = await list_operators_async(conn)
        keys = await list_operator_keys_async(conn)
    by_operator: dict[str | None, list[ApiKeyRow]] = {}
    for key in keys:
        by_operator.setdefault(key.operator_id, []).append(key)
    return json_response(
        listing(operator_resource(o, by_operator.get(o.id, [])) for o in operators)
    )


async def revoke_operator_key(request: Request) -> Response:
    """Any operator's key: operators answer for the platform together."""
    principal = await authenticate(request, OperatorRole.ADMIN)
    services: Services = request.app.state.services
    key_id = request.path_params["keyId"]
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        found = await get_operator_key_async(conn, key_id)
        if found is None or found.operator_id is None:
            raise Problem("not_found", "no such operator key")
        row = await revoke_key_async(conn, Owner.operator(found.operator_id), key_id)
    if row is None:
        raise Problem("invalid_state", "the key is revoked already")
    return json_response(key_resource(row))


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
