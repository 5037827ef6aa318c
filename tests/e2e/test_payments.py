"""A merchant's view over HTTP: the stack from `paystream up`, the simulator's
book as the proof of what was charged."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from datetime import UTC
from datetime import datetime

import httpx
import pytest
import redis
from standardwebhooks import Webhook

from paystream.settings import settings
from stack.postgres_binaries import postgres_bindir
from tests.support.card_numbers import PAN
from tests.support.card_numbers import SHAPES
from tests.support.card_numbers import holds_pan
from tests.support.stack import RunningStack


def new_order() -> str:
    return f"order-{uuid.uuid4().hex[:16]}"


def body(**fields: object) -> dict[str, object]:
    return {
        "orderId": new_order(),
        "amount": 1999,
        "currency": "EUR",
        "methodToken": "tok_visa",
        **fields,
    }


def create(stack: RunningStack, key: str | None = None, **fields: object) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway}/payments",
        json=body(**fields),
        headers=stack.headers(key or uuid.uuid4().hex),
    )


def test_a_visa_token_is_captured_within_a_second_and_charged_once(stack: RunningStack) -> None:
    started = time.monotonic()
    created = create(stack)
    assert created.status_code == 201 and created.json()["status"] == "PENDING"
    payment = stack.wait_for_status(created.json()["paymentId"], {"CAPTURED"}, timeout=1.0)
    assert payment["status"] == "CAPTURED", payment
    assert time.monotonic() - started < 1.0
    assert payment["capturedAmount"] == 1999 and payment["pspReference"].startswith("psp_")
    [charge] = stack.charges_for(payment["paymentId"])
    assert charge["status"] == "captured" and charge["capturedAmount"] == 1999
    timeline = httpx.get(
        f"{stack.gateway}/payments/{payment['paymentId']}/events", headers=stack.headers()
    ).json()["data"]
    assert [(e["type"], e["source"]) for e in timeline] == [
        ("payment.created", "api"),
        ("payment.captured", "psp"),
    ]


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_decline", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
def test_a_declined_token_fails_with_the_psps_code(
    stack: RunningStack, token: str, code: str
) -> None:
    created = create(stack, methodToken=token).json()
    payment = stack.wait_for_status(created["paymentId"], {"FAILED"})
    assert (payment["status"], payment["failureCode"]) == ("FAILED", code)
    assert payment["failureMessage"]


def test_a_manual_capture_payment_stays_authorized(stack: RunningStack) -> None:
    created = create(stack, captureMethod="manual").json()
    stack.wait_for_status(created["paymentId"], {"AUTHORIZED"})
    stack.wait_until_settled(created["paymentId"])
    payment = stack.payment(created["paymentId"])
    assert (payment["status"], payment["authorizedAmount"], payment["capturedAmount"]) == (
        "AUTHORIZED",
        1999,
        0,
    )
    [charge] = stack.charges_for(payment["paymentId"])
    assert charge["status"] == "authorized"


def test_the_readmes_3_d_secure_walk_through_passes_by_callback_and_fails_by_confirm(
    stack: RunningStack,
) -> None:
    back = "https://shop.example/orders/back"
    passing = create(stack, methodToken="tok_3ds_required", returnUrl=back).json()
    failing = create(stack, methodToken="tok_3ds_required", captureMethod="manual").json()
    waiting = [
        stack.wait_for_status(p["paymentId"], {"REQUIRES_ACTION"}) for p in (passing, failing)
    ]
    for payment in waiting:
        assert payment["nextAction"]["url"].startswith(f"{stack.simulator}/challenge/psp_")

    passed = httpx.post(waiting[0]["nextAction"]["url"], data={"outcome": "pass"})
    httpx.post(waiting[1]["nextAction"]["url"], data={"outcome": "fail"})
    confirm = httpx.post(
        f"{stack.gateway}/payments/{failing['paymentId']}/confirm", headers=stack.headers()
    )

    assert (passed.status_code, passed.headers["location"]) == (303, back)
    assert confirm.status_code in (202, 409)  # 409: the callback came first
    captured = stack.wait_for_status(passing["paymentId"], {"CAPTURED"})
    failed = stack.wait_for_status(failing["paymentId"], {"FAILED"})
    assert (captured["capturedAmount"], captured["nextAction"]) == (1999, None)
    assert failed["failureCode"] == "authentication_failed"
    [charge] = stack.charges_for(passing["paymentId"])
    assert charge["status"] == "captured"


def test_a_replay_answers_the_same_body_and_another_body_is_422(stack: RunningStack) -> None:
    payload = body()
    first = httpx.post(f"{stack.gateway}/payments", json=payload, headers=stack.headers("replay-1"))
    again = httpx.post(f"{stack.gateway}/payments", json=payload, headers=stack.headers("replay-1"))
    other = httpx.post(
        f"{stack.gateway}/payments",
        json={**payload, "amount": 5},
        headers=stack.headers("replay-1"),
    )
    missing = httpx.post(f"{stack.gateway}/payments", json=payload, headers=stack.headers())
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert (missing.status_code, missing.json()["code"]) == (400, "idempotency_key_missing")


def test_a_redis_flush_between_request_and_replay_neither_duplicates_nor_charges_twice(
    stack: RunningStack,
) -> None:
    payload = body()
    first = httpx.post(f"{stack.gateway}/payments", json=payload, headers=stack.headers("flush-1"))
    payment_id = first.json()["paymentId"]
    stack.wait_for_status(payment_id, {"CAPTURED"})
    with redis.Redis.from_url(stack.info["redisUrl"]) as client:
        client.flushall()
    again = httpx.post(f"{stack.gateway}/payments", json=payload, headers=stack.headers("flush-1"))
    assert again.status_code == 201 and again.json()["paymentId"] == payment_id
    assert again.headers["idempotent-replayed"] == "true"
    listed = httpx.get(
        f"{stack.gateway}/payments", params={"orderId": payload["orderId"]}, headers=stack.headers()
    ).json()["data"]
    assert [p["paymentId"] for p in listed] == [payment_id]
    stack.wait_until_settled(payment_id)
    assert len(stack.charges_for(payment_id)) == 1


async def _storm(
    stack: RunningStack, payloads_and_keys: list[tuple[dict[str, object], str]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=stack.gateway, limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post("/payments", json=p, headers=stack.headers(k))
                for p, k in payloads_and_keys
            )
        )


def test_fifty_concurrent_requests_with_one_key_give_one_payment_and_one_charge(
    stack: RunningStack,
) -> None:
    payload = body()
    answers = asyncio.run(_storm(stack, [(payload, "storm-key")] * 50))
    created = {a.json()["paymentId"] for a in answers if a.status_code == 201}
    assert {a.status_code for a in answers} <= {201, 409} and len(created) == 1
    payment_id = created.pop()
    stack.wait_for_status(payment_id, {"CAPTURED"})
    stack.wait_until_settled(payment_id)
    assert len(stack.charges_for(payment_id)) == 1


def test_fifty_concurrent_requests_for_one_order_give_one_payment_and_409s(
    stack: RunningStack,
) -> None:
    payload = body()
    answers = asyncio.run(_storm(stack, [(payload, uuid.uuid4().hex) for _ in range(50)]))
    created = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 409]
    assert len(created) == 1 and len(refused) == 49
    payment_id = created[0].json()["paymentId"]
    assert {(a.json()["code"], a.json()["paymentId"]) for a in refused} == {
        ("order_already_exists", payment_id)
    }
    stack.wait_for_status(payment_id, {"CAPTURED"})
    stack.wait_until_settled(payment_id)
    assert len(stack.charges_for(payment_id)) == 1


def test_a_card_number_anywhere_is_refused_and_then_found_nowhere(stack: RunningStack) -> None:
    answers = [*_card_numbers_in_bodies(stack), *_card_numbers_outside_bodies(stack)]
    captured = create(stack).json()["paymentId"]
    stack.wait_for_status(captured, {"CAPTURED"})
    answers.append(
        httpx.post(
            f"{stack.gateway}/payments/{captured}/refunds",
            json={"reason": f"card {PAN}"},
            headers=stack.headers(uuid.uuid4().hex),
        )
    )
    answers.append(
        httpx.post(
            f"{stack.gateway}/webhook-endpoints",
            headers=stack.headers(),
            json={"url": f"http://127.0.0.1:9/{PAN}", "eventTypes": ["*"]},
        )
    )
    answers += _card_numbers_in_reports(stack) + _card_numbers_in_psp_callbacks(stack)
    for answer in answers:
        assert answer.status_code == 400 and answer.json()["code"] == "raw_card_data_forbidden", (
            answer.request.url,
            answer.text,
        )
        assert not holds_pan(answer.text) and not holds_pan(str(answer.headers))
    dump = subprocess.run(
        [
            str(postgres_bindir(settings().postgres_bin) / "pg_dump"),
            "--data-only",
            stack.info["databaseUrl"],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "payments" in dump and not holds_pan(dump)
    for path in [*stack.log_files(), stack.root / "psp-simulator.sqlite3"]:
        assert not holds_pan(path.read_bytes().decode("utf-8", "replace")), path


def _card_numbers_in_bodies(stack: RunningStack) -> list[httpx.Response]:
    answers = [create(stack, amount=int(PAN))]
    for shape in SHAPES:
        for change in (
            {"description": f"card {shape}"},
            {"metadata": {"card": shape}},
            {"metadata": {shape[:40]: "key"}},
            {"orderId": shape},
            {"methodToken": shape},
        ):
            answers.append(create(stack, **change))
    return answers


def _card_numbers_outside_bodies(stack: RunningStack) -> list[httpx.Response]:
    answers = []
    for shape in SHAPES:
        answers.append(
            httpx.get(
                f"{stack.gateway}/payments", params={"orderId": shape}, headers=stack.headers()
            )
        )
        if "\n" in shape:
            continue  # no HTTP client sends a newline in a header
        for name, value in (
            ("Idempotency-Key", f"key-{shape}"),
            ("X-Request-Id", shape),
            ("X-Card", shape),
        ):
            answers.append(
                httpx.post(
                    f"{stack.gateway}/payments",
                    json=body(),
                    headers={**stack.headers(uuid.uuid4().hex), name: value.encode()},
                )
            )
    return answers


def _card_numbers_in_reports(stack: RunningStack) -> list[httpx.Response]:
    header = "batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
    lines = [
        f"2026-11-24,2026-11-24,capture,psp_1,{PAN},pay_1,100,1,99,EUR\n",
        "2026-11-24,2026-11-24,capture,psp_1,4111.1111.1111.1111,pay_1,100,1,99,EUR\n",
        f"2026-11-24,2026-11-24,capture,psp_1,pay_1,pay_1,{PAN},1,99,EUR\n",
        *(f'2026-11-24,2026-11-24,capture,psp_1,pay_1,pay_1,100,1,99,"{s}"\n' for s in SHAPES),
    ]
    return [
        httpx.post(
            f"{stack.gateway}/reconciliations",
            content=(header + line).encode(),
            headers={**stack.operator_headers(), "Content-Type": "text/csv"},
        )
        for line in lines
    ]


def _card_numbers_in_psp_callbacks(stack: RunningStack) -> list[httpx.Response]:
    secret = json.loads((stack.root / "secrets.json").read_text())["psp_webhook_secret"]
    answers = []
    for number, shape in enumerate(SHAPES):
        callback = json.dumps({"type": "payment.captured", "data": {"reference": shape}})
        webhook_id, now = f"msg_card_{number}", datetime.now(UTC)
        answers.append(
            httpx.post(
                f"{stack.gateway}/webhooks/simulator",
                content=callback,
                headers={
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": Webhook(secret).sign(webhook_id, now, callback),
                    "content-type": "application/json",
                },
            )
        )
    return answers
