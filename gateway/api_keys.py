"""A merchant's API keys (merchant role `admin`): create, list, rotate,
revoke. Keys are shown once and stored as an HMAC; a revoked key stops working
at once (the revocation is announced to every gateway process's key cache
once it is committed: `gateway.principals`). A merchant key
grants only merchant roles: operators' keys are made elsewhere
(`gateway.operators`, `paystream operators create`)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from gateway.auth import MERCHANT_ROLES
from gateway.auth import MerchantRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import listing
from gateway.principals import announce_revocation
from gateway.problems import Problem
from gateway.problems import not_found
from gateway.resources import key_resource
from gateway.schemas.keys import ApiKey
from gateway.schemas.keys import ApiKeyList
from gateway.schemas.keys import ApiKeyWithSecret
from gateway.schemas.keys import CreateApiKeyRequest
from gateway.schemas.keys import RotateApiKeyRequest
from store.keys import ApiKeyRow
from store.keys import Owner
from store.keys import create_key
from store.keys import get_key
from store.keys import list_keys
from store.keys import revoke_key


async def revoked(
    call: Call[Any, Any], owner: Owner, key_id: str, grace: timedelta = timedelta(0)
) -> ApiKeyRow:
    """The owner's key, revoked now or once `grace` is over, and announced
    to every gateway's key cache after the commit; a key that is revoked
    already is `invalid_state`."""
    row = await revoke_key(call.conn, owner, key_id, grace)
    if row is None:
        raise Problem("invalid_state", "the key is revoked already")
    call.after_commit(partial(announce_revocation, call.services.redis))
    return row


async def create_api_key(call: Call[CreateApiKeyRequest, None]) -> Answer:
    row, key = await create_key(
        call.conn,
        Owner.merchant(call.principal.merchant_id),
        sorted(set(call.body.roles)),
        call.services.config.key_pepper,
        call.body.description,
    )
    return key_resource(row, key)


async def list_api_keys(call: Call[None, None]) -> Answer:
    rows = await list_keys(call.conn, Owner.merchant(call.principal.merchant_id))
    return listing(key_resource(row) for row in rows)


async def rotate_api_key(call: Call[RotateApiKeyRequest, None]) -> Answer:
    """A new key with the same roles; the old one works `graceSeconds` more.
    Only merchant roles are carried over, whatever the old key held."""
    key_id, owner = call.path["keyId"], Owner.merchant(call.principal.merchant_id)
    old = await get_key(call.conn, owner, key_id)
    if old is None:
        raise not_found("API key")
    await revoked(call, owner, key_id, timedelta(seconds=call.body.grace_seconds))
    row, key = await create_key(
        call.conn,
        owner,
        [role for role in old.roles if role in MERCHANT_ROLES],
        call.services.config.key_pepper,
        old.description,
    )
    return {**key_resource(row, key), "replaces": key_id}


async def revoke_api_key(call: Call[None, None]) -> Answer:
    key_id, owner = call.path["keyId"], Owner.merchant(call.principal.merchant_id)
    if await get_key(call.conn, owner, key_id) is None:
        raise not_found("API key")
    return key_resource(await revoked(call, owner, key_id))


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
