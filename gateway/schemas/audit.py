"""The audit log, as a merchant reads it."""

from __future__ import annotations

from typing import Annotated
from typing import Any

from pydantic import Field

from gateway.schemas.common import BIGINT_MAX
from gateway.schemas.common import ApiModel
from gateway.schemas.common import IsoDatetime


class ListAuditQuery(ApiModel):
    object_id: str | None = None
    action: str | None = None
    actor: str | None = None
    since: IsoDatetime | None = None
    until: IsoDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    starting_after: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | None = None


class AuditEntry(ApiModel):
    seq: int
    occurred_at: str
    actor: str = Field(description="A key id, or system:<role>")
    request_id: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditList(ApiModel):
    data: list[AuditEntry]
    has_more: bool
    next_cursor: int | None
