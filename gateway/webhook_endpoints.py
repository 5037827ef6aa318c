"""Merchant webhook endpoints and their deliveries: register, list, delete,
rotate a secret, enable again after a 410; list deliveries (dead letters
included) and replay one. Endpoint management needs the `admin` role: an
endpoint decides where paystream sends data from inside its network."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from gateway.auth import MerchantRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import listing
from gateway.http import page
from gateway.http import page_window
from gateway.problems import Problem
from gateway.problems import not_found
from gateway.resources import delivery_resource
from gateway.resources import endpoint_resource
from gateway.schemas.webhooks import CreateWebhookEndpointRequest
from gateway.schemas.webhooks import ListDeliveriesQuery
from gateway.schemas.webhooks import RotateSecretRequest
from gateway.schemas.webhooks import WebhookDelivery
from gateway.schemas.webhooks import WebhookDeliveryList
from gateway.schemas.webhooks import WebhookEndpoint
from gateway.schemas.webhooks import WebhookEndpointList
from gateway.schemas.webhooks import WebhookEndpointWithSecret
from payments.resources import camel_fields
from payments.webhooks import address_allowed
from payments.webhooks import check_endpoint_url
from payments.webhooks import new_webhook_secret
from store.audit import record
from store.webhook_deliveries import list_deliveries
from store.webhook_deliveries import replay_delivery
from store.webhook_endpoints import EndpointRow
from store.webhook_endpoints import create_endpoint
from store.webhook_endpoints import delete_endpoint
from store.webhook_endpoints import enable_endpoint
from store.webhook_endpoints import get_endpoint
from store.webhook_endpoints import list_endpoints
from store.webhook_endpoints import rotate_secret


async def _audit(conn: AsyncConnection[Any], endpoint: EndpointRow, action: str) -> None:
    """What the log keeps of an endpoint: never its secrets."""
    await record(
        conn,
        merchant_id=endpoint.merchant_id,
        action=action,
        object_id=endpoint.id,
        after=camel_fields(endpoint, "url", "event_types", "status"),
    )


async def _check_url(url: str, allow_private: bool) -> None:
    """Refuse URLs that are not https to a public address (SSRF)."""
    try:
        host, port = check_endpoint_url(url, allow_private=allow_private)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (ValueError, OSError) as error:
        raise _bad_url(
            str(error) if isinstance(error, ValueError) else "the host does not resolve"
        ) from None
    if not all(address_allowed(str(info[4][0]), allow_private=allow_private) for info in infos):
        raise _bad_url("the host resolves to a private, loopback or reserved address")


def _bad_url(reason: str) -> Problem:
    return Problem(
        "validation_error",
        "the endpoint URL cannot be used",
        errors=[{"pointer": "/url", "detail": reason}],
    )


async def public_url(call: Call[CreateWebhookEndpointRequest, None]) -> None:
    await _check_url(call.body.url, call.services.config.webhooks_allow_private)


async def create_webhook_endpoint(call: Call[CreateWebhookEndpointRequest, None]) -> Answer:
    event_types = sorted(set(call.body.event_types))
    endpoint = await create_endpoint(
        call.conn, call.principal.merchant_id, call.body.url, event_types, new_webhook_secret()
    )
    await _audit(call.conn, endpoint, "webhook_endpoint.created")
    return endpoint_resource(endpoint, with_secret=True)


async def list_webhook_endpoints(call: Call[None, None]) -> Answer:
    endpoints = await list_endpoints(call.conn, call.principal.merchant_id)
    return listing(endpoint_resource(e) for e in endpoints)


async def read_webhook_endpoint(call: Call[None, None]) -> Answer:
    endpoint = await get_endpoint(call.conn, call.principal.merchant_id, call.path["endpointId"])
    if endpoint is None:
        raise not_found("webhook endpoint")
    return endpoint_resource(endpoint)


async def delete_webhook_endpoint(call: Call[None, None]) -> Answer:
    merchant_id, endpoint_id = call.principal.merchant_id, call.path["endpointId"]
    if not await delete_endpoint(call.conn, merchant_id, endpoint_id):
        raise not_found("webhook endpoint")
    await record(
        call.conn,
        merchant_id=merchant_id,
        action="webhook_endpoint.deleted",
        object_id=endpoint_id,
    )
    return None


async def rotate_webhook_secret(call: Call[RotateSecretRequest, None]) -> Answer:
    grace = (
        call.services.config.webhook_secret_grace
        if call.body.grace_seconds is None
        else timedelta(seconds=call.body.grace_seconds)
    )
    endpoint = await rotate_secret(
        call.conn, call.principal.merchant_id, call.path["endpointId"], new_webhook_secret(), grace
    )
    if endpoint is None:
        raise not_found("webhook endpoint")
    await _audit(call.conn, endpoint, "webhook_endpoint.secret_rotated")
    return endpoint_resource(endpoint, with_secret=True)


async def enable_webhook_endpoint(call: Call[None, None]) -> Answer:
    endpoint = await enable_endpoint(call.conn, call.principal.merchant_id, call.path["endpointId"])
    if endpoint is None:
        raise not_found("webhook endpoint")
    await _audit(call.conn, endpoint, "webhook_endpoint.enabled")
    return endpoint_resource(endpoint)


async def list_webhook_deliveries(call: Call[None, ListDeliveriesQuery]) -> Answer:
    query = call.query
    rows = await list_deliveries(
        call.conn,
        call.principal.merchant_id,
        status=query.status,
        endpoint_id=query.endpoint_id,
        **page_window(query),
    )
    return page(rows, query.limit, delivery_resource, lambda d: d.id)


async def replay_webhook_delivery(call: Call[None, None]) -> Answer:
    delivery = await replay_delivery(call.conn, call.principal.merchant_id, call.path["deliveryId"])
    if delivery is None:
        raise not_found("delivery")
    return delivery_resource(delivery)


_ENDPOINT = "/webhook-endpoints/{endpointId}"
ENDPOINTS = (
    Endpoint(
        "POST",
        "/webhook-endpoints",
        create_webhook_endpoint,
        "Register a webhook endpoint",
        "webhooks",
        ok_status=201,
        response=WebhookEndpointWithSecret,
        roles=(MerchantRole.ADMIN,),
        body=CreateWebhookEndpointRequest,
        check=public_url,
    ),
    Endpoint(
        "GET",
        "/webhook-endpoints",
        list_webhook_endpoints,
        "List webhook endpoints",
        "webhooks",
        response=WebhookEndpointList,
        roles=(MerchantRole.ADMIN,),
    ),
    Endpoint(
        "GET",
        _ENDPOINT,
        read_webhook_endpoint,
        "Get a webhook endpoint",
        "webhooks",
        response=WebhookEndpoint,
        roles=(MerchantRole.ADMIN,),
    ),
    Endpoint(
        "DELETE",
        _ENDPOINT,
        delete_webhook_endpoint,
        "Delete a webhook endpoint",
        "webhooks",
        ok_status=204,
        roles=(MerchantRole.ADMIN,),
    ),
    Endpoint(
        "POST",
        f"{_ENDPOINT}/rotate-secret",
        rotate_webhook_secret,
        "Rotate a webhook secret",
        "webhooks",
        response=WebhookEndpointWithSecret,
        roles=(MerchantRole.ADMIN,),
        body=RotateSecretRequest,
    ),
    Endpoint(
        "POST",
        f"{_ENDPOINT}/enable",
        enable_webhook_endpoint,
        "Enable a webhook endpoint",
        "webhooks",
        response=WebhookEndpoint,
        roles=(MerchantRole.ADMIN,),
    ),
    Endpoint(
        "GET",
        "/webhook-deliveries",
        list_webhook_deliveries,
        "List webhook deliveries",
        "webhooks",
        response=WebhookDeliveryList,
        roles=(MerchantRole.ADMIN,),
        query=ListDeliveriesQuery,
    ),
    Endpoint(
        "POST",
        "/webhook-deliveries/{deliveryId}/replay",
        replay_webhook_delivery,
        "Replay a webhook delivery",
        "webhooks",
        ok_status=202,
        response=WebhookDelivery,
        roles=(MerchantRole.ADMIN,),
    ),
)
