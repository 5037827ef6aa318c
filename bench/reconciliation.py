"""Reconciliation at scale: `paystream reconcile FILE` on an N-row settlement
report against N captured payments, next to DuckDB running the same matching
join on the same data (the peer an analyst would reach for).

The data is made for the run: N captured payments of merchant `mer_bench`
written straight into Postgres with COPY (not measured), the PSP's own report
of them (pinned in the simulator, which serves it as the batch's report), and
the file an operator uploads: the PSP's report with a few lines whose figures
it does not bear out. Both have a few breaks of each kind, so both sides must
find the same classes; both check the upload against the PSP's report, as an
uploaded report is only an operator's claim."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from payments.reconciliation import FINAL_CLASSES
from store.merchants import ensure_merchant

MERCHANT = "mer_bench"
HEADER = "batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
# One line in this many is a break of each kind.
BREAK_EVERY = 1000


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    counts: dict[str, int]

    def to_json(self, rows: int) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "rowsPerSecond": round(rows / self.seconds) if self.seconds else 0,
            "peakRssMb": round(self.peak_rss_mb, 1),
            "counts": self.counts,
        }


def _amount(index: int) -> int:
    return 100 + (index * 7919) % 99_900


def load_payments(database_url: str, rows: int, run: str) -> None:
    """N captured payments and their captured events, written with COPY."""
    now = datetime.now(UTC).isoformat()
    with psycopg.connect(database_url) as conn:
        ensure_merchant(conn, MERCHANT, "Benchmark")
        _copy(
            conn,
            "payments (id, merchant_id, order_id, amount, currency, status, capture_method,"
            " method_token, psp, authorized_amount, captured_amount, psp_reference,"
            " created_at, updated_at)",
            rows,
            lambda i: (
                f"pay_{run}_{i}\t{MERCHANT}\t{run}-{i}\t{_amount(i)}\tEUR\tCAPTURED\t"
                f"automatic\ttok_visa\tsimulator\t{_amount(i)}\t{_amount(i)}\tpsp_{run}_{i}\t"
                f"{now}\t{now}\n"
            ),
        )
        _copy(
            conn,
            "payment_events (id, payment_id, merchant_id, type, from_status, to_status, source,"
            " created_at)",
            rows,
            lambda i: (
                f"evt_{run}_{i}\tpay_{run}_{i}\t{MERCHANT}\tpayment.captured\t"
                f"PENDING\tCAPTURED\tpsp\t{now}\n"
            ),
        )
        conn.execute("ANALYZE payments")
        conn.execute("ANALYZE payment_events")


def write_reports(path: Path, psp_path: Path, rows: int, run: str) -> None:
    """The PSP's report of those captures, with breaks: an amount off, a
    currency off, a line for a payment we never heard of, a duplicate, and a
    capture left out. `path` is the upload: the same, but for a line whose fee
    the PSP's report does not bear out."""
    today = datetime.now(UTC).date().isoformat()
    with path.open("w") as handle, psp_path.open("w") as psp_handle:
        handle.write(HEADER)
        psp_handle.write(HEADER)
        for chunk in _chunks(rows):
            lines = _report_lines(chunk, run, today)
            psp_handle.write("".join(theirs for theirs, _ in lines))
            handle.write("".join(claimed for _, claimed in lines))


def _report_lines(chunk: range, run: str, today: str) -> list[tuple[str, str]]:
    """Each line as the PSP has it, and as the upload claims it."""
    lines = []
    for i in chunk:
        gross = _amount(i)
        if i % BREAK_EVERY == 1:
            gross += 1
        fee = gross * 29 // 1000 + 25
        reference = f"pay_{run}_{i}" if i % BREAK_EVERY != 2 else f"pay_{run}_x{i}"
        currency = "USD" if i % BREAK_EVERY == 5 else "EUR"
        if i % BREAK_EVERY == 3:
            continue  # captured by us, missing from the report
        head = f"{today},{today},capture,psp_{run}_{i},{reference},{reference},{gross},"
        line = f"{head}{fee},{gross - fee},{currency}\n"
        # The upload claims a fee the PSP did not charge: unconfirmed.
        claimed = (
            f"{head}{fee + 1},{gross - fee - 1},{currency}\n" if i % BREAK_EVERY == 6 else line
        )
        lines.append((line, claimed))
        if i % BREAK_EVERY == 4:
            lines.append((line, line))
    return lines


def export_ours(database_url: str, path: Path) -> None:
    """Our side, as an analyst would take it: every payment with the day it was
    captured, the captures settled by an earlier report left out."""
    query = """
        COPY (
            SELECT p.id, p.status, p.captured_amount, p.currency,
                   (e.created_at AT TIME ZONE 'UTC')::date AS captured_on
            FROM payments p
            LEFT JOIN payment_events e ON e.payment_id = p.id AND e.type = 'payment.captured'
            WHERE NOT EXISTS (SELECT 1 FROM settled_items s
                              WHERE s.item_key = 'capture:' || p.psp_reference || ':' || p.id)
        ) TO STDOUT WITH (FORMAT csv, HEADER)"""
    with (
        psycopg.connect(database_url) as conn,
        conn.cursor() as cursor,
        cursor.copy(query) as copy,
        path.open("wb") as handle,
    ):
        for data in copy:
            handle.write(data)


def run_paystream(report: Path, env: dict[str, str]) -> Measured:
    """`paystream reconcile FILE`, as an operator runs it, in its own process."""
    with_json = report.with_suffix(".paystream.json")
    began = time.perf_counter()
    # Its log goes to a file: a pipe nobody reads while it runs could fill up.
    with tempfile.TemporaryFile() as said:
        process = subprocess.Popen(
            [sys.executable, "-m", "paystream", "reconcile", str(report), "--json", str(with_json)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=said,
        )
        peak_kb = _wait_for_peak_rss(process)
        seconds = time.perf_counter() - began
        if process.returncode != 0:
            said.seek(0)
            raise RuntimeError(f"paystream reconcile failed: {said.read().decode()[-800:]}")
    counts = json.loads(with_json.read_text())["counts"]
    return Measured(seconds, peak_kb / 1024, _classes(counts))


_DUCKDB = """
import json, sys, duckdb
report, theirs, ours = sys.argv[1], sys.argv[2], sys.argv[3]
db = duckdb.connect()
db.execute('SET enable_progress_bar = false')  # it prints to stdout on a long query
for name, path in (('lines', report), ('theirs', theirs)):
    db.execute(f'''
CREATE TABLE {name} AS SELECT row_number() OVER () AS id, * FROM read_csv('{path}', header = true,
    columns = {{'batch': 'VARCHAR', 'date': 'DATE', 'type': 'VARCHAR', 'psp_reference': 'VARCHAR',
                'reference': 'VARCHAR', 'payment_reference': 'VARCHAR', 'gross': 'BIGINT',
                'fee': 'BIGINT', 'net': 'BIGINT', 'currency': 'VARCHAR'}})''')
db.execute(f'''
CREATE TABLE ours AS SELECT * FROM read_csv('{ours}', header = true,
    columns = {{'id': 'VARCHAR', 'status': 'VARCHAR', 'captured_amount': 'BIGINT',
                'currency': 'VARCHAR', 'captured_on': 'DATE'}})''')
db.execute('''
CREATE TABLE results AS
WITH l AS (
    SELECT *, row_number() OVER (PARTITION BY type, psp_reference, reference ORDER BY id) AS nth
    FROM lines
), t AS (
    SELECT DISTINCT ON (batch, type, psp_reference, reference) * FROM theirs
    ORDER BY batch, type, psp_reference, reference, id
)
SELECT l.id, CASE
    WHEN l.nth > 1 THEN 'duplicate'
    WHEN t.id IS NULL OR (t.date, t.payment_reference, t.gross, t.fee, t.net, t.currency)
        <> (l.date, l.payment_reference, l.gross, l.fee, l.net, l.currency) THEN 'unconfirmed'
    WHEN o.id IS NULL THEN 'missing_internally'
    WHEN o.status NOT IN ('CAPTURED', 'REFUNDED') THEN 'missing_internally'
    WHEN o.currency <> l.currency THEN 'currency_mismatch'
    WHEN o.captured_amount = l.gross THEN 'matched'
    ELSE 'amount_mismatch' END AS class
FROM l LEFT JOIN ours o ON o.id = l.reference
LEFT JOIN t ON (t.batch, t.type, t.psp_reference, t.reference)
    = (l.batch, l.type, l.psp_reference, l.reference)
UNION ALL
SELECT NULL, 'missing_at_psp' FROM ours o
WHERE o.captured_on IN (SELECT DISTINCT date FROM lines)
  AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.reference = o.id)''')
counts = dict(db.execute('SELECT class, count(*) FROM results GROUP BY class').fetchall())
json.dump(counts, sys.stdout)
"""


def run_duckdb(report: Path, theirs: Path, ours: Path) -> Measured:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _DUCKDB, str(report), str(theirs), str(ours)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak_kb = _wait_for_peak_rss(process)
    seconds = time.perf_counter() - began
    assert process.stdout is not None and process.stderr is not None
    if process.returncode != 0:
        raise RuntimeError(f"duckdb failed: {process.stderr.read().decode()[-800:]}")
    return Measured(seconds, peak_kb / 1024, _classes(json.loads(process.stdout.read())))


def duckdb_version() -> str:
    import duckdb

    return str(duckdb.__version__)


def _classes(counts: dict[str, int]) -> dict[str, int]:
    return {name: int(counts.get(name, 0)) for name in FINAL_CLASSES}


def _wait_for_peak_rss(process: subprocess.Popen[bytes]) -> int:
    """Wait for the child; its peak resident set size in KiB.

    Read from /proc (VmHWM, the high-water mark of the child's own memory)
    while it runs, not from the kernel's rusage at exit: that one counts the
    parent's size at the fork, which an exec never lowers, so every child of
    a big parent would look at least as big as the parent."""
    peak = 0
    status_file = f"/proc/{process.pid}/status"
    while True:
        try:
            with open(status_file) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
                        break
        except OSError:
            pass
        pid, status_code = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status_code)
            return peak
        time.sleep(0.02)


def _copy(conn: psycopg.Connection[Any], table: str, rows: int, line: Callable[[int], str]) -> None:
    """`rows` lines into `table` ("name (columns)") with COPY, line(i) each,
    sent in chunks."""
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
        for chunk in _chunks(rows):
            copy.write("".join(line(i) for i in chunk))


def _chunks(rows: int, size: int = 50_000) -> Iterator[range]:
    for start in range(0, rows, size):
        yield range(start, min(rows, start + size))


def pin_psp_report(simulator_url: str, path: Path) -> None:
    """The simulator serves the PSP's own report as the batch's, from now on."""
    today = datetime.now(UTC).date().isoformat()
    with path.open("rb") as handle:
        httpx.put(
            f"{simulator_url}/_admin/settlements/{today}", content=handle, timeout=300
        ).raise_for_status()


def measure(
    database_url: str,
    simulator_url: str,
    env: dict[str, str],
    rows: int,
    folder: Path,
    run: str,
) -> dict[str, Any]:
    """Load the data, then both sides on it; the class counts must agree."""
    load_payments(database_url, rows, run)
    report, theirs = folder / f"report-{rows}.csv", folder / f"psp-report-{rows}.csv"
    ours = folder / f"ours-{rows}.csv"
    write_reports(report, theirs, rows, run)
    pin_psp_report(simulator_url, theirs)
    export_ours(database_url, ours)
    lines = sum(1 for _ in csv.reader(report.open())) - 1
    paystream = run_paystream(report, env)
    duckdb = run_duckdb(report, theirs, ours)
    for path in (report, theirs, ours):
        path.unlink()
    return {
        "rows": lines,
        "paystream": paystream.to_json(lines),
        "duckdb": duckdb.to_json(lines),
        "ratio": round(duckdb.seconds / paystream.seconds, 3),
        "sameClasses": paystream.counts == duckdb.counts,
    }
