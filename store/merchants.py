"""Merchants: the gateway's tenants. Their keys are in `store.keys`."""

from __future__ import annotations

from store.statements import Statement
from store.statements import Steps
from store.statements import execute
from store.statements import fetch_value
from store.statements import store_function


@store_function
def ensure_merchant(merchant_id: str, name: str) -> Statement[int]:
    return execute(
        "INSERT INTO merchants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (merchant_id, name),
    )


@store_function
def merchant_exists(merchant_id: str) -> Steps[bool]:
    found = yield from fetch_value("SELECT 1 FROM merchants WHERE id = %s", (merchant_id,))
    return found is not None
