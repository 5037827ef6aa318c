"""What every model shares: the camelCase base, the identifier and time types,
the problem details every error answers with, and the health answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import AwareDatetime
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic.alias_generators import to_camel

# Cursors that are Postgres bigints: a larger one would be a 500 from the database.
BIGINT_MAX = 2**63 - 1


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


# Order ids and tokens are the merchant's identifiers: printable, no spaces.
Identifier = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]


def _iso_datetime(value: Any) -> Any:
    # Pydantic would also read "0.5" as seconds since 1970; the API says ISO 8601.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-24T12:00:00Z") from None
    return value


IsoDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_datetime),
    Field(examples=["2026-11-24T12:00:00Z"], description="ISO 8601, with a time zone"),
]


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, with paystream's stable `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None


class Health(BaseModel):
    status: Literal["ok", "ready", "degraded", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
