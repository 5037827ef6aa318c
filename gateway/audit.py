"""The audit log, read (role `audit:read`): a merchant sees its own rows."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole, authenticate
from gateway.http import json_response, page, validate_query
from gateway.openapi import Endpoint
from gateway.resources import audit_entry_resource
from gateway.schemas.audit import AuditList, ListAuditQuery
from gateway.types import Services
from store.audit import list_audit
from store.db import connection


async def read_audit(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.AUDIT_READ)
    query = validate_query(ListAuditQuery, request)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        rows = await list_audit(
            conn,
            principal.merchant_id,
            object_id=query.object_id,
            action=query.action,
            actor=query.actor,
            since=query.since,
            until=query.until,
            limit=query.limit + 1,
            starting_after=query.starting_after,
        )
    return json_response(page(rows, query.limit, audit_entry_resource, lambda row: row.seq))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/audit",
        read_audit,
        "Read the audit log",
        "audit",
        response=AuditList,
        roles=(MerchantRole.AUDIT_READ,),
        query=ListAuditQuery,
    ),
)
