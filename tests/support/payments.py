"""Payments and requests written straight through the store, for tests that
drive the actors without the API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC
from datetime import datetime

import psycopg

from payments.operations import OperationKind
from payments.records import PaymentRecord
from payments.status import EventSource
from store.payment_changes import request_action
from store.payments import get_payment
from store.payments import insert_payment
from store.refunds import create_refund
from tests.conftest import Merchant


def create_payment(
    database_url: str,
    merchant: Merchant,
    *,
    amount: int = 1000,
    capture_method: str = "automatic",
    token: str = "tok_visa",
    psp: str = "simulator",
) -> tuple[str, str]:
    """A new PENDING payment at `psp`; returns its id and its authorization's operation id."""
    now = datetime.now(UTC)
    payment = PaymentRecord(
        merchant_id=merchant.id,
        order_id=f"order-{uuid.uuid4().hex}",
        amount=amount,
        currency="EUR",
        capture_method=capture_method,
        method_token=token,
        psp=psp,
        description=None,
        metadata={},
        created_at=now,
        updated_at=now,
    )

    async def write() -> str | None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            created = await insert_payment(conn, payment)
            return None if created is None else created.operation_id

    operation_id = asyncio.run(write())
    assert operation_id is not None
    return payment.id, operation_id


def request(
    database_url: str,
    merchant: Merchant,
    payment_id: str,
    kind: OperationKind,
    amount: int | None = None,
) -> str:
    """A merchant's capture, cancel (void) or refund; returns the operation id."""

    async def write() -> str:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            payment = await get_payment(conn, merchant.id, payment_id, for_update=True)
            assert payment is not None
            if kind is OperationKind.REFUND:
                created = await create_refund(
                    conn, payment, amount or payment.captured_amount, None, datetime.now(UTC)
                )
                assert created is not None
                operation_id = created[1]
            else:
                _, operation_id, _ = await request_action(
                    conn, payment, kind, amount or payment.authorized_amount, source=EventSource.API
                )
            await conn.commit()
            return operation_id

    return asyncio.run(write())
