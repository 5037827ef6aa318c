"""`paystream up --tls`: the gateway and the simulator on HTTPS with a local
CA, certificates checked both ways, HSTS on every answer."""

from __future__ import annotations

import ssl
import uuid

import httpx
import psycopg
import pytest

from stack.ports import wait_until
from tests.support.servers import make_root
from tests.support.stack import remove
from tests.support.stack import start_stack


def test_a_payment_goes_end_to_end_over_https() -> None:
    root = make_root("paystream-tls-")
    try:
        stack = start_stack(root, tls=True)
        try:
            info = stack.info
            assert info["gatewayUrl"].startswith("https://") and info["caFile"]
            client = httpx.Client(verify=ssl.create_default_context(cafile=info["caFile"]))
            created = client.post(
                f"{info['gatewayUrl']}/payments",
                json={
                    "orderId": uuid.uuid4().hex,
                    "amount": 900,
                    "currency": "EUR",
                    "methodToken": "tok_visa",
                },
                headers={
                    "Authorization": f"Bearer {info['apiKey']}",
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
            assert created.status_code == 201
            assert created.headers["strict-transport-security"].startswith("max-age=")
            payment_id = created.json()["paymentId"]
            payment = wait_until(
                lambda: client.get(
                    f"{info['gatewayUrl']}/payments/{payment_id}",
                    headers={"Authorization": f"Bearer {info['apiKey']}"},
                ).json(),
                holds=lambda payment: payment["status"] == "CAPTURED",
                timeout=10,
                what=f"{payment_id} to be CAPTURED",
                interval=0.1,
            )
            assert payment["status"] == "CAPTURED"  # the worker reached the PSP over verified TLS
            with psycopg.connect(info["databaseUrl"]) as conn:
                received = wait_until(
                    lambda: conn.execute(
                        "SELECT count(*) FROM webhook_inbox WHERE reference = %s", (payment_id,)
                    ).fetchone(),
                    holds=lambda received: received is not None and received[0] > 0,
                    timeout=10,
                    what=f"the PSP's callback for {payment_id}",
                    interval=0.1,
                )
            assert received == (1,)  # and the PSP's callback reached us over verified TLS
            client.close()
            with httpx.Client() as plain, pytest.raises(httpx.ConnectError):
                plain.get(f"{info['gatewayUrl']}/healthz")  # without the local CA: no trust
        finally:
            assert stack.stop() == 0
    finally:
        remove(root)
