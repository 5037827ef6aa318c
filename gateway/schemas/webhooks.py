"""Webhooks: the PSP's callbacks in, and the merchant's endpoints and
deliveries out."""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import Field

from gateway.schemas.common import ApiModel
from payments.events import ALL_EVENTS
from payments.events import EVENT_TYPES


class WebhookReceipt(BaseModel):
    received: bool
    duplicate: bool


def _event_type(value: str) -> str:
    if value != ALL_EVENTS and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type; use '*' or one of {', '.join(sorted(EVENT_TYPES))}")
    return value


EventType = Annotated[str, AfterValidator(_event_type)]


class CreateWebhookEndpointRequest(ApiModel):
    url: Annotated[
        str, Field(min_length=8, max_length=2048, examples=["https://shop.example/hooks"])
    ]
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=32)] = Field(
        description="Event types to receive, or ['*'] for all"
    )


class RotateSecretRequest(ApiModel):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] | None = Field(
        None, description="How long the old secret also signs; defaults to the server's setting"
    )


class WebhookEndpoint(ApiModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    previous_secret_retires_at: str | None
    created_at: str


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="Shown once: verify deliveries with it (Standard Webhooks)")


class WebhookEndpointList(ApiModel):
    data: list[WebhookEndpoint]


class ListDeliveriesQuery(ApiModel):
    status: Literal["pending", "delivered", "dead"] | None = None
    endpoint_id: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    starting_after: str | None = None


class WebhookDelivery(ApiModel):
    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class WebhookDeliveryList(ApiModel):
    data: list[WebhookDelivery]
    has_more: bool
    next_cursor: str | None
