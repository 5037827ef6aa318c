"""The audit log, read (role `audit:read`): a merchant sees its own rows."""

from __future__ import annotations

from gateway.auth import MerchantRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import page
from gateway.http import page_window
from gateway.resources import audit_entry_resource
from gateway.schemas.audit import AuditList
from gateway.schemas.audit import ListAuditQuery
from store.audit import list_audit


async def read_audit(call: Call[None, ListAuditQuery]) -> Answer:
    query = call.query
    rows = await list_audit(
        call.conn,
        call.principal.merchant_id,
        object_id=query.object_id,
        action=query.action,
        actor=query.actor,
        since=query.since,
        until=query.until,
        **page_window(query),
    )
    return page(rows, query.limit, audit_entry_resource, lambda row: row.seq)


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
