"""A merchant's API keys (merchant role `admin`): create, list, rotate,
revoke. Keys are shown once and stored as an HMAC; a revoked key stops working
at once (keys are looked up on every request, never cached). A merchant key
grants only merchant roles: operators' keys are made elsewhere
(`gateway.operators`, `paystream operators create`)."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MERCHANT_ROLES, MerchantRole, authenticate
from gateway.http import json_response, listing, read_json_object, validate
from gateway.openapi import Endpoint
from gateway.problems import Problem
from gateway.resources import key_resource
from gateway.schemas.keys import (
    ApiKey,
    ApiKeyList,
    ApiKeyWithSecret,
    CreateApiKeyRequest,
    RotateApiKeyRequest,
)
from gateway.types import Services
from store.audit import acting_async
from store.db import connection
from store.keys import (
    Owner,
    create_key_async,
    get_key_async,
    list_keys_async,
    revoke_key_async,
)


async def create_api_key(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    command = validate(
        CreateApiKeyRequest, await read_json_object(request, services.config.max_body_bytes)
    )
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        row, key = await create_key_async(
            conn,
            Owner.merchant(principal.merchant_id),
            sorted(set(command.roles)),
            services.config.key_pepper,
            command.description,
        )
    return json_response(key_resource(row, key), 201)


async def list_api_keys(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        rows = await list_keys_async(conn, Owner.merchant(principal.merchant_id))
    return json_response(listing(key_resource(row) for row in rows))


async def rotate_api_key(request: Request) -> Response:
    """A new key with the same roles; the old one works `graceSeconds` more.
    Only merchant roles are carried over, whatever the old key held."""
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    document = await read_json_object(request, services.config.max_body_bytes, empty_allowed=True)
    command = validate(RotateApiKeyRequest, document)
    key_id, owner = request.path_params["keyId"], Owner.merchant(principal.merchant_id)
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        old = await get_key_async(conn, owner, key_id)
        if old is None:
            raise Problem("not_found", "no such API key")
        revoked = await revoke_key_async(
            conn, owner, key_id, timedelta(seconds=command.grace_seconds)
        )
        if revoked is None:
            raise Problem("invalid_state", "the key is revoked already")
        row, key = await create_key_async(
            conn,
            owner,
            [role for role in old.roles if role in MERCHANT_ROLES],
            services.config.key_pepper,
            old.description,
        )
    return json_response({**key_resource(row, key), "replaces": key_id}, 201)


async def revoke_api_key(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    key_id, owner = request.path_params["keyId"], Owner.merchant(principal.merchant_id)
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        if await get_key_async(conn, owner, key_id) is None:
            raise Problem("not_found", "no such API key")
        row = await revoke_key_async(conn, owner, key_id)
    if row is None:
        raise Problem("invalid_state", "the key is revoked already")
    return json_response(key_resource(row))


_KEY = "/api-keys/{keyId}"
ENDPOINTS = (
    Endpoint(
        "POST",
        "/api-keys",
        create_api_key,
        "Create an API key",
        "keys",
        ok_status=201,
        response=ApiKeyWithSecret,
        roles=(MerchantRole.ADMIN,),
        body=CreateApiKeyRequest,
    ),
    Endpoint(
        "GET",
        "/api-keys",
        list_api_keys,
        "List API keys",
        "keys",
        response=ApiKeyList,
        roles=(MerchantRole.ADMIN,),
    ),
    Endpoint(
        "POST",
        f"{_KEY}/rotate",
        rotate_api_key,
        "Rotate an API key",
        "keys",
        ok_status=201,
        response=ApiKeyWithSecret,
        roles=(MerchantRole.ADMIN,),
        body=RotateApiKeyRequest,
        problems=("invalid_state",),
    ),
    Endpoint(
        "DELETE",
        _KEY,
        revoke_api_key,
        "Revoke an API key",
        "keys",
        response=ApiKey,
        roles=(MerchantRole.ADMIN,),
        problems=("invalid_state",),
    ),
)
