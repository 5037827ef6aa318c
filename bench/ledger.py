"""Ledger postings per second: capture entries posted as the actors post them,
one entry per transaction, from a pool of threads like a worker's."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from payments.ledger import capture_entry
from store.ledger import post_entry
from store.merchants import ensure_merchant
from store.pool import open_pool

MERCHANT = "mer_bench"


def measure(database_url: str, entries: int, threads: int = 8) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    pool = open_pool(database_url, max_size=threads)
    try:
        with pool.connection() as conn:
            ensure_merchant(conn, MERCHANT, "Benchmark")
        per_entry = len(capture_entry("pay_x", 1, "EUR").postings)

        def post(index: int) -> None:
            entry = capture_entry(f"pay_{run}_{index}", 100 + index % 1000, "EUR")
            with pool.connection() as conn, conn.transaction():
                assert post_entry(conn, MERCHANT, entry, psp="simulator")

        began = time.perf_counter()
        with ThreadPoolExecutor(threads) as executor:
            list(executor.map(post, range(entries)))
        seconds = time.perf_counter() - began
    finally:
        pool.close()
    return {
        "entries": entries,
        "threads": threads,
        "seconds": round(seconds, 3),
        "entriesPerSecond": round(entries / seconds),
        "postingsPerSecond": round(entries * per_entry / seconds),
    }
