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
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole, authenticate
from gateway.http import (
    json_response,
    listing,
    page,
    read_json_object,
    validate,
    validate_query,
)
from gateway.openapi import Endpoint
from gateway.problems import Problem
from gateway.resources import delivery_resource, endpoint_resource
from gateway.schemas.webhooks import (
    CreateWebhookEndpointRequest,
    ListDeliveriesQuery,
    RotateSecretRequest,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from gateway.types import Services
from payments.webhooks import address_allowed, check_endpoint_url, new_webhook_secret
from store.audit import acting_async, record_async
from store.db import connection
from store.webhook_deliveries import list_deliveries, replay_delivery
from store.webhook_endpoints import (
    EndpointRow,
    create_endpoint,
    delete_endpoint,
    enable_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
)


async def _audit(conn: AsyncConnection[Any], endpoint: EndpointRow, action: str) -> None:
    """What the log keeps of an endpoint: never its secrets."""
    after = {"url": endpoint.url, "eventTypes": endpoint.event_types, "status": endpoint.status}
    await record_async(
        conn,
        merchant_id=endpoint.merchant_id,
        action=action,
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        after=after,
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


async def create_webhook_endpoint(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    command = validate(
        CreateWebhookEndpointRequest,
        await read_json_object(request, services.config.max_body_bytes),
    )
    await _check_url(command.url, services.config.webhooks_allow_private)
    event_types = sorted(set(command.event_types))
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        endpoint = await create_endpoint(
            conn, principal.merchant_id, command.url, event_types, new_webhook_secret()
        )
        await _audit(conn, endpoint, "webhook_endpoint.created")
    return json_response(endpoint_resource(endpoint, with_secret=True), 201)


async def list_webhook_endpoints(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        endpoints = await list_endpoints(conn, principal.merchant_id)
    return json_response(listing(endpoint_resource(e) for e in endpoints))


async def read_webhook_endpoint(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        endpoint = await get_endpoint(
            conn, principal.merchant_id, request.path_params["endpointId"]
        )
    if endpoint is None:
        raise Problem("not_found", "no such webhook endpoint")
    return json_response(endpoint_resource(endpoint))


async def delete_webhook_endpoint(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    endpoint_id = request.path_params["endpointId"]
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        deleted = await delete_endpoint(conn, principal.merchant_id, endpoint_id)
        if deleted:
            await record_async(
                conn,
                merchant_id=principal.merchant_id,
                action="webhook_endpoint.deleted",
                object_type="webhook_endpoint",
                object_id=endpoint_id,
            )
    if not deleted:
        raise Problem("not_found", "no such webhook endpoint")
    return Response(status_code=204)


async def rotate_webhook_secret(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    document = await read_json_object(request, services.config.max_body_bytes, empty_allowed=True)
    command = validate(RotateSecretRequest, document)
    grace = (
        services.config.webhook_secret_grace
        if command.grace_seconds is None
        else timedelta(seconds=command.grace_seconds)
    )
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        endpoint = await rotate_secret(
            conn,
            principal.merchant_id,
            request.path_params["endpointId"],
            new_webhook_secret(),
            grace,
        )
        if endpoint is None:
            raise Problem("not_found", "no such webhook endpoint")
        await _audit(conn, endpoint, "webhook_endpoint.secret_rotated")
    return json_response(endpoint_resource(endpoint, with_secret=True))


async def enable_webhook_endpoint(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        endpoint = await enable_endpoint(
            conn, principal.merchant_id, request.path_params["endpointId"]
        )
        if endpoint is not None:
            await _audit(conn, endpoint, "webhook_endpoint.enabled")
    if endpoint is None:
        raise Problem("not_found", "no such webhook endpoint")
    return json_response(endpoint_resource(endpoint))


async def list_webhook_deliveries(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    query = validate_query(ListDeliveriesQuery, request)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        rows = await list_deliveries(
            conn,
            principal.merchant_id,
            status=query.status,
            endpoint_id=query.endpoint_id,
            limit=query.limit + 1,
            starting_after=query.starting_after,
        )
    return json_response(page(rows, query.limit, delivery_resource, lambda d: d.id))


async def replay_webhook_delivery(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.ADMIN)
    services: Services = request.app.state.services
    async with acting_async(services.pool, principal.key_id, request.state.request_id) as conn:
        delivery = await replay_delivery(
            conn, principal.merchant_id, request.path_params["deliveryId"]
        )
        if delivery is not None:
            await record_async(
                conn,
                merchant_id=principal.merchant_id,
                action="webhook_delivery.replayed",
                object_type="webhook_delivery",
                object_id=delivery.id,
                after={"eventId": delivery.event_id, "endpointId": delivery.endpoint_id},
            )
    if delivery is None:
        raise Problem("not_found", "no such delivery")
    return json_response(delivery_resource(delivery), 202)


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
