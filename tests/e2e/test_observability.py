"""What operators see of a running `paystream up`: every metric family on one
scrape of the gateway's /metrics, and one payment followed through the logs
of the gateway, the workers and the PSP simulator by its request id."""

from __future__ import annotations

import re
import uuid
from datetime import UTC
from datetime import datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drill.receiver import serving_receiver
from stack.ports import wait_until
from tests.support.deploy import names_the_dashboard_queries
from tests.support.deploy import names_the_rules_query
from tests.support.stack import RunningStack

FAMILIES = {
    "paystream_http_request_duration_seconds": "histogram",
    "paystream_payment_transitions": "counter",
    "paystream_psp_call_duration_seconds": "histogram",
    "paystream_queue_depth": "gauge",
    "paystream_outbox_unpublished": "gauge",
    "paystream_outbox_lag_seconds": "gauge",
    "paystream_webhook_delivery_failures": "counter",
    "paystream_webhook_dead_letters": "counter",
    "paystream_reconciliation_lines": "counter",
    "paystream_payment_time_to_authorized_seconds": "histogram",
    "paystream_psp_circuit_openings": "counter",
    "paystream_psp_circuit_open": "gauge",
    "paystream_payments_pending": "gauge",
    "paystream_payments_pending_oldest_seconds": "gauge",
    "paystream_payments_flagged": "gauge",
    "paystream_audit_unsealed": "gauge",
    "paystream_audit_seal_lag_seconds": "gauge",
    # Dramatiq's own middleware, in the worker processes.
    "dramatiq_messages": "counter",
    "dramatiq_message_duration_milliseconds": "histogram",
}


def create_payment(stack: RunningStack, request_id: str | None = None) -> str:
    body = {
        "orderId": f"obs-{uuid.uuid4().hex[:12]}",
        "amount": 1250,
        "currency": "EUR",
        "methodToken": "tok_visa",
    }
    headers = stack.headers(uuid.uuid4().hex)
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    response = httpx.post(f"{stack.gateway}/payments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["paymentId"])


def scraped(text: str) -> tuple[dict[str, str], dict[str, list[tuple[dict[str, str], float]]]]:
    """The scrape's families (name: type), and its samples by sample name."""
    families: dict[str, str] = {}
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return families, found


def open_the_circuit_once(stack: RunningStack) -> None:
    """The simulator is out (every call fails) until the workers' breaker opens."""
    faults = f"{stack.simulator}/_admin/faults"
    httpx.patch(faults, json={"outages": [{"startsIn": 0, "lasts": 120}]}).raise_for_status()
    try:
        payment_id = create_payment(stack)

        def openings() -> float:
            _, found = scraped(httpx.get(f"{stack.gateway}/metrics").text)
            return sum(v for _, v in found.get("paystream_psp_circuit_openings_total", []))

        wait_until(openings, holds=lambda n: n >= 1, timeout=40, what="the circuit to open")
    finally:
        httpx.patch(faults, json={"outages": []}).raise_for_status()
    assert stack.wait_for_status(payment_id, {"CAPTURED"}, timeout=40)["status"] == "CAPTURED"


@pytest.fixture(scope="module")
def scrape(short_retries_stack: RunningStack) -> str:
    """One scrape of the gateway after a payment, a dead letter, a
    reconciliation run and an opened circuit: every family has samples."""
    stack = short_retries_stack
    with serving_receiver() as receiver:
        receiver.fail_first = 1_000_000  # every delivery fails: a dead letter
        endpoint = httpx.post(
            f"{stack.gateway}/webhook-endpoints",
            json={"url": receiver.url, "eventTypes": ["payment.captured"]},
            headers=stack.headers(),
        )
        assert endpoint.status_code == 201, endpoint.text
        endpoint_id = endpoint.json()["endpointId"]
        payment_id = create_payment(stack)
        assert stack.wait_for_status(payment_id, {"CAPTURED"})["status"] == "CAPTURED"

        def dead() -> list[dict[str, object]]:
            answer = httpx.get(
                f"{stack.gateway}/webhook-deliveries",
                params={"status": "dead", "endpointId": endpoint_id},
                headers=stack.headers(),
            )
            return answer.json()["data"]  # type: ignore[no-any-return]

        wait_until(dead, timeout=30, what="a dead letter", interval=0.2)
        httpx.delete(f"{stack.gateway}/webhook-endpoints/{endpoint_id}", headers=stack.headers())

    today = datetime.now(UTC).date().isoformat()
    started = httpx.post(
        f"{stack.gateway}/reconciliations",
        json={"pspBatch": today},
        headers=stack.operator_headers(),
    )
    assert started.status_code == 202, started.text
    run_url = f"{stack.gateway}/reconciliations/{started.json()['reconciliationId']}"
    wait_until(
        lambda: httpx.get(run_url, headers=stack.operator_headers()).json()["status"],
        holds=lambda status: status == "completed",
        timeout=30,
        what="the reconciliation run to complete",
        interval=0.2,
    )

    open_the_circuit_once(stack)
    answer = httpx.get(f"{stack.gateway}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def test_one_scrape_of_the_gateway_carries_every_metric_family_of_every_process(
    scrape: str,
) -> None:
    families, found = scraped(scrape)
    for name, kind in FAMILIES.items():
        assert families.get(name) == kind, f"{name} ({kind}) is not in the scrape"

    def value(name: str, **labels: str) -> float:
        return sum(v for got, v in found.get(name, []) if labels.items() <= got.items())

    assert value("paystream_payment_transitions_total", type="payment.created", source="api") >= 1
    assert value("paystream_payment_transitions_total", status="CAPTURED", source="psp") >= 1
    assert value("paystream_psp_call_duration_seconds_count", operation="authorize") >= 1
    # Which PSP: every PSP call and every transition says.
    for name in (
        "paystream_psp_call_duration_seconds_count",
        "paystream_payment_transitions_total",
    ):
        assert {labels.get("psp") for labels, _ in found[name]} == {"simulator"}, name
    assert value("paystream_payment_transitions_total", source="api", psp="simulator") >= 1
    assert value("paystream_http_request_duration_seconds_count", route="/payments") >= 1
    assert value("paystream_webhook_delivery_failures_total", reason="http_500") >= 1
    assert value("paystream_webhook_dead_letters_total") >= 1
    assert value("paystream_reconciliation_lines_total", result="matched") >= 1
    assert value("dramatiq_messages_total", actor_name="drive_operation") >= 1
    assert value("paystream_payment_time_to_authorized_seconds_count", psp="simulator") >= 1
    assert value("paystream_psp_circuit_openings_total", psp="simulator") >= 1
    # Route templates, never raw paths: no series per payment.
    assert not any(
        "pay_" in str(labels)
        for labels, _ in found["paystream_http_request_duration_seconds_count"]
    )


def test_every_metric_the_alert_rules_and_the_dashboard_query_is_in_the_scrape(
    scrape: str,
) -> None:
    """By sample name, as PromQL selects them: a histogram's _bucket, _count
    and _sum, a counter's _total."""
    _, found = scraped(scrape)
    assert names_the_rules_query() - set(found) == set()
    assert names_the_dashboard_queries() - set(found) == set()


def test_one_payment_can_be_followed_across_processes_by_its_request_id(
    short_retries_stack: RunningStack,
) -> None:
    stack = short_retries_stack
    request_id = f"req_follow_{uuid.uuid4().hex[:10]}"
    payment_id = create_payment(stack, request_id)
    assert stack.wait_for_status(payment_id, {"CAPTURED"})["status"] == "CAPTURED"
    logs = {path.stem: path for path in stack.log_files()}

    def lines_of(process: str) -> list[str]:
        text = logs[process].read_text(errors="replace")
        return [line for line in text.splitlines() if f"request_id={request_id}" in line]

    def followed() -> dict[str, int]:
        """Lines with the request id, by process."""
        return {name: len(lines_of(name)) for name in ("gateway", "worker", "psp-simulator")}

    wait_until(
        followed,
        holds=lambda lines: all(lines.values()),
        timeout=15,
        what=f"lines with {request_id} in every process's log",
        interval=0.2,
    )
    for process in ("gateway", "worker", "psp-simulator"):
        assert any(f"payment_id={payment_id}" in line for line in lines_of(process)), process
    # Under `paystream up` the lines are for people: level, logger, then the context.
    assert re.search(r"\[info\s*\]", lines_of("worker")[0])
