"""`GET /metrics` on the gateway: open by default, behind a bearer token when
one is set, and carrying the families read at scrape time."""

from __future__ import annotations

import pytest

from gateway.types import GatewayConfig
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.anyio


async def test_metrics_are_open_by_default_and_carry_the_scrape_time_families(
    gateway_config: GatewayConfig,
) -> None:
    async with running_gateway(gateway_config) as gateway:
        scrape = await gateway.client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    for family in ("paystream_queue_depth", "paystream_outbox_unpublished"):
        assert f"# TYPE {family} gauge" in scrape.text


async def test_with_a_token_set_metrics_want_it_as_a_bearer_token(
    gateway_config: GatewayConfig,
) -> None:
    async with running_gateway(gateway_config, metrics_token="scrape-secret-0123") as gateway:
        missing = await gateway.client.get("/metrics")
        wrong = await gateway.client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-secret-9999"}
        )
        basic = await gateway.client.get(
            "/metrics", headers={"Authorization": "Basic scrape-secret-0123"}
        )
        right = await gateway.client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-secret-0123"}
        )
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "authentication_required"
    assert right.status_code == 200 and "paystream_outbox_lag_seconds" in right.text
