"""`GET /metrics` on the gateway: open by default, behind a bearer token when
one is set, and carrying the families read at scrape time: what waits in
Redis and Postgres, and how old the oldest is."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from actors.outcomes import flag
from gateway.types import GatewayConfig
from payments.status import EventSource
from psp.breaker import open_key
from store.audit import record
from store.audit import seal
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.gateway import simulators
from tests.support.payments import create_payment

pytestmark = pytest.mark.anyio

SCRAPE_TIME_GAUGES = (
    "paystream_queue_depth",
    "paystream_psp_circuit_open",
    "paystream_outbox_unpublished",
    "paystream_outbox_lag_seconds",
    "paystream_payments_pending",
    "paystream_payments_pending_oldest_seconds",
    "paystream_payments_flagged",
    "paystream_audit_unsealed",
    "paystream_audit_seal_lag_seconds",
)


async def samples(gateway: Gateway) -> dict[str, list[tuple[dict[str, str], float]]]:
    scrape = await gateway.client.get("/metrics")
    assert scrape.status_code == 200, scrape.text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value_of(
    found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matching = [v for got, v in found.get(name, []) if labels.items() <= got.items()]
    assert len(matching) == 1, f"{name}{labels}: {matching}"
    return matching[0]


async def test_metrics_are_open_by_default_and_carry_the_scrape_time_families(
    gateway_config: GatewayConfig,
) -> None:
    async with running_gateway(gateway_config) as gateway:
        scrape = await gateway.client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    for family in SCRAPE_TIME_GAUGES:
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


async def test_a_payment_waiting_at_its_psp_shows_as_pending_with_its_age_then_flagged(
    gateway_config: GatewayConfig, database_url: str, merchant: Merchant
) -> None:
    # A PSP of its own, so the session's other payments do not count here.
    psp = f"probe{uuid.uuid4().hex[:8]}"
    config = {"connectors": simulators(psp)}
    async with running_gateway(gateway_config, **config) as gateway:
        before = await samples(gateway)
        assert value_of(before, "paystream_payments_pending", psp=psp) == 0
        assert value_of(before, "paystream_payments_pending_oldest_seconds", psp=psp) == 0
        payment_id, operation_id = await anyio.to_thread.run_sync(
            lambda: create_payment(database_url, merchant, psp=psp)
        )
        waiting = await samples(gateway)
        assert value_of(waiting, "paystream_payments_pending", psp=psp) == 1
        assert value_of(waiting, "paystream_payments_pending_oldest_seconds", psp=psp) > 0
        assert value_of(waiting, "paystream_payments_flagged", psp=psp) == 0
        pool: Any = open_pool(database_url, max_size=1)
        try:
            flag(pool, payment_id, operation_id, "no answer", source=EventSource.JANITOR)
        finally:
            pool.close()
        flagged = await samples(gateway)
    assert value_of(flagged, "paystream_payments_flagged", psp=psp) == 1


async def test_an_open_circuit_shows_as_1_and_a_closed_one_as_0(
    gateway_config: GatewayConfig, redis_client: redis.Redis
) -> None:
    async with running_gateway(gateway_config, connectors=simulators("calm", "down")) as gateway:
        redis_client.set(open_key("down"), "1", px=60_000)
        found = await samples(gateway)
    assert value_of(found, "paystream_psp_circuit_open", psp="down") == 1
    assert value_of(found, "paystream_psp_circuit_open", psp="calm") == 0


async def test_audit_rows_not_yet_sealed_show_with_their_age_until_the_sealer_chains_them(
    gateway_config: GatewayConfig, database_url: str
) -> None:
    async with running_gateway(gateway_config) as gateway:
        with psycopg.connect(database_url, autocommit=True) as conn:
            seal(conn)
            with conn.transaction():
                record(conn, merchant_id=None, action="probe", object_type="probe", object_id="p1")
            behind = await samples(gateway)
            seal(conn)
        caught_up = await samples(gateway)
    assert value_of(behind, "paystream_audit_unsealed") >= 1
    assert value_of(behind, "paystream_audit_seal_lag_seconds") > 0
    assert value_of(caught_up, "paystream_audit_unsealed") == 0
    assert value_of(caught_up, "paystream_audit_seal_lag_seconds") == 0
