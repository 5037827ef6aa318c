"""Matching a settlement report against the books, set-wise in Postgres: the
rules of `payments.reconciliation` in SQL (a property test holds the two to
the same answers), the resolution of PENDING items the report shows settled,
our own items the report lacks, and the settlement of what matched.

An uploaded report is checked against the PSP's own data for its batches,
copied in beside it (`store.settlement_reports`): a line the PSP's data does
not carry with the same figures is `unconfirmed`, and is neither settled nor
resolved."""

from __future__ import annotations

from dataclasses import dataclass

from payments.events import EventType
from store.statements import Statement
from store.statements import Steps
from store.statements import execute
from store.statements import execute_many
from store.statements import fetch_all
from store.statements import fetch_tuples
from store.statements import store_function

# A run matches its PSP's report against that PSP's payments and refunds
# only: another PSP's are not this report's to settle, nor missing from it.
_RUN_PSP = "(SELECT psp FROM reconciliations WHERE id = %(run)s)"

_CLASSIFY = f"""
WITH lines AS (
    SELECT l.*,
           row_number() OVER (PARTITION BY l.record_type, l.psp_reference, l.reference
                              ORDER BY l.id) AS nth,
           row_number() OVER (ORDER BY l.id) + 1 AS line_number
    FROM settlement_lines l WHERE l.reconciliation_id = %(run)s
), theirs AS (
    -- The PSP's own data for an uploaded report's batches; none for a PSP batch.
    SELECT DISTINCT ON (x.batch, x.record_type, x.psp_reference, x.reference) x.*
    FROM psp_settlement_lines x WHERE x.reconciliation_id = %(run)s
    ORDER BY x.batch, x.record_type, x.psp_reference, x.reference, x.id
), ours AS (
    SELECT l.*,
           coalesce(p.merchant_id, r.merchant_id) AS merchant_id,
           coalesce(p.id, r.id) IS NOT NULL AS found,
           CASE WHEN l.record_type = 'refund' THEN r.status ELSE p.status END AS our_status,
           CASE WHEN l.record_type = 'refund' THEN r.amount ELSE p.captured_amount END
               AS our_amount,
           CASE WHEN l.record_type = 'refund' THEN r.currency ELSE p.currency END::text
               AS our_currency,
           t.id IS NOT NULL AS psp_has_it,
           NOT %(checked)s OR (t.id IS NOT NULL AND t.settlement_date = l.settlement_date
               AND t.payment_reference = l.payment_reference AND t.gross = l.gross
               AND t.fee = l.fee AND t.net = l.net AND t.currency = l.currency) AS confirmed,
           t.settlement_date || ' gross ' || t.gross || ' fee ' || t.fee || ' net ' || t.net
               || ' ' || t.currency AS psp_says
    FROM lines l
    LEFT JOIN theirs t ON %(checked)s AND t.batch = l.batch AND t.record_type = l.record_type
        AND t.psp_reference = l.psp_reference AND t.reference = l.reference
    LEFT JOIN payments p ON l.record_type IN ('capture', 'chargeback') AND p.id = l.reference
        AND p.psp = {_RUN_PSP}
    LEFT JOIN refunds r ON l.record_type = 'refund' AND r.id = l.reference
        AND r.payment_id IN (SELECT id FROM payments WHERE psp = {_RUN_PSP})
), classified AS (
    SELECT o.*, CASE
        WHEN o.nth > 1 THEN 'duplicate'
        WHEN NOT o.confirmed THEN 'unconfirmed'
        WHEN NOT o.found OR o.record_type NOT IN ('capture', 'refund', 'chargeback')
            THEN 'missing_internally'
        WHEN o.our_status IN ('PENDING', 'REQUIRES_ACTION')
            THEN CASE WHEN o.record_type = 'chargeback' THEN 'missing_internally'
                      ELSE 'resolvable' END
        WHEN o.our_currency <> o.currency THEN 'currency_mismatch'
        WHEN o.record_type = 'refund' THEN CASE
            WHEN o.our_status <> 'SUCCEEDED' THEN 'missing_internally'
            WHEN o.our_amount = o.gross THEN 'matched' ELSE 'amount_mismatch' END
        WHEN o.our_status NOT IN ('CAPTURED', 'REFUNDED') THEN 'missing_internally'
        WHEN o.record_type = 'chargeback'
            THEN CASE WHEN o.gross <= o.our_amount THEN 'matched' ELSE 'amount_mismatch' END
        WHEN o.our_amount = o.gross THEN 'matched' ELSE 'amount_mismatch'
    END AS class
    FROM ours o
)
INSERT INTO reconciliation_results (reconciliation_id, line_id, line_number, class, record_type,
                                    reference, psp_reference, merchant_id, reason)
SELECT %(run)s, id, line_number, class, record_type, reference, psp_reference, merchant_id,
    CASE class
        WHEN 'duplicate' THEN 'the same ' || record_type || ' appears ' || nth || ' times'
        WHEN 'unconfirmed' THEN 'the PSP''s own data for batch ' || batch || CASE WHEN psp_has_it
            THEN ' says ' || psp_says || '; the report says ' || settlement_date || ' gross '
                || gross || ' fee ' || fee || ' net ' || net || ' ' || currency
            ELSE ' has no such ' || record_type END
        WHEN 'missing_internally' THEN CASE WHEN found
            THEN 'we have it as ' || our_status || ', not as a settled ' || record_type
            ELSE 'we have no record of ' || reference END
        WHEN 'currency_mismatch' THEN 'report ' || currency || ', ours ' || our_currency
        WHEN 'amount_mismatch' THEN 'report ' || gross || ' ' || currency || ', ours '
            || our_amount || ' ' || our_currency
    END
FROM classified
"""

_MISSING_AT_PSP = f"""
WITH days AS (
    SELECT DISTINCT settlement_date FROM settlement_lines WHERE reconciliation_id = %(run)s
), captures AS (
    SELECT p.id, p.psp_reference, p.merchant_id, 'capture' AS record_type
    FROM payment_events e JOIN payments p ON p.id = e.payment_id
    WHERE e.type = '{EventType.PAYMENT_CAPTURED}' AND p.psp = {_RUN_PSP}
      AND (e.created_at AT TIME ZONE 'UTC')::date IN (SELECT settlement_date FROM days)
), refunded AS (
    SELECT r.id, r.psp_reference, r.merchant_id, 'refund' AS record_type
    FROM refunds r JOIN payments p ON p.id = r.payment_id
    WHERE r.status = 'SUCCEEDED' AND p.psp = {_RUN_PSP}
      AND (r.updated_at AT TIME ZONE 'UTC')::date IN (SELECT settlement_date FROM days)
), ours AS (SELECT * FROM captures UNION ALL SELECT * FROM refunded)
INSERT INTO reconciliation_results (reconciliation_id, line_id, class, record_type, reference,
                                    psp_reference, merchant_id, reason)
SELECT %(run)s, NULL, 'missing_at_psp', o.record_type, o.id, o.psp_reference, o.merchant_id,
       'we settled this ' || o.record_type || '; the PSP''s report does not have it'
FROM ours o
WHERE NOT EXISTS (
    SELECT 1 FROM settlement_lines l WHERE l.reconciliation_id = %(run)s
      AND l.record_type = o.record_type AND l.reference = o.id)
  AND NOT EXISTS (
    SELECT 1 FROM settled_items s
    WHERE s.item_key = o.record_type || ':' || coalesce(o.psp_reference, '') || ':' || o.id)
"""

_SETTLE = """
WITH matched AS (
    SELECT l.record_type, l.psp_reference, l.reference, l.batch, l.currency, l.gross, l.fee,
           l.net, r.merchant_id,
           l.record_type || ':' || l.psp_reference || ':' || l.reference AS item_key,
           %(run)s || ':' || r.merchant_id || ':' || l.currency || ':' || l.batch AS settlement
    FROM reconciliation_results r JOIN settlement_lines l ON l.id = r.line_id
    WHERE r.reconciliation_id = %(run)s AND r.class = 'matched'
), fresh AS (
    INSERT INTO settled_items (item_key, settlement)
    SELECT item_key, settlement FROM matched
    ON CONFLICT (item_key) DO NOTHING
    RETURNING item_key
)
SELECT m.merchant_id, m.currency, m.settlement AS source_id,
       sum(m.fee)::bigint AS fees,
       sum(CASE WHEN m.record_type = 'chargeback' THEN m.gross ELSE 0 END)::bigint AS chargebacks,
       sum(m.net)::bigint AS net,
       count(*) AS items
FROM matched m JOIN fresh f ON f.item_key = m.item_key
GROUP BY m.merchant_id, m.currency, m.settlement
ORDER BY m.settlement
"""


# A million lines' sorts and hash tables held in memory rather than spilled
# to disk; JIT compiling costs a second and saves less on these plans
# (`paystream bench`, reconciliation).
_BULK = ("SET LOCAL work_mem = '256MB'", "SET LOCAL jit = off")


@store_function
def bulk_settings() -> Steps[None]:
    """For the rest of the caller's transaction: plans for a million rows."""
    for setting in _BULK:
        yield from execute(setting)


@store_function
def classify_lines(run_id: str, *, checked: bool) -> Steps[None]:
    """`checked`: the report is an upload, held to the PSP's own data. In
    the caller's transaction."""
    yield from bulk_settings.steps()
    # Fresh statistics first and after: a report's lines were just copied in,
    # and a plan made on the empty tables' estimates nests loops over them
    # (minutes for 100,000 lines instead of a second).
    yield from execute("ANALYZE settlement_lines")
    yield from execute("DELETE FROM reconciliation_results WHERE reconciliation_id = %s", (run_id,))
    yield from execute(_CLASSIFY, {"run": run_id, "checked": checked})
    yield from execute("ANALYZE reconciliation_results")


@dataclass(frozen=True, slots=True)
class Resolvable:
    line_id: int
    record_type: str
    reference: str
    psp_reference: str
    gross: int
    currency: str


@store_function
def resolvable_lines(run_id: str) -> Statement[list[Resolvable]]:
    return fetch_all(
        Resolvable,
        "SELECT l.id AS line_id, l.record_type, l.reference, l.psp_reference, l.gross, l.currency"
        " FROM reconciliation_results r JOIN settlement_lines l ON l.id = r.line_id"
        " WHERE r.reconciliation_id = %s AND r.class = 'resolvable'",
        (run_id,),
    )


@store_function
def mark_unconfirmed(run_id: str, reasons: dict[int, str]) -> Steps[int]:
    """Lines the PSP's answer to a status inquiry did not bear out, by line id:
    breaks, with what the PSP said."""
    if not reasons:
        return 0
    return (
        yield from execute_many(
            "UPDATE reconciliation_results SET class = 'unconfirmed', reason = %s"
            " WHERE reconciliation_id = %s AND line_id = %s",
            [(reason, run_id, line_id) for line_id, reason in reasons.items()],
        )
    )


@store_function
def mark_resolved(run_id: str, references: list[str]) -> Statement[int]:
    return execute(
        "UPDATE reconciliation_results SET resolved = true"
        " WHERE reconciliation_id = %s AND reference = ANY(%s) AND class = 'matched'",
        (run_id, references),
    )


@store_function
def record_missing_at_psp(run_id: str) -> Statement[int]:
    return execute(_MISSING_AT_PSP, {"run": run_id})


@dataclass(frozen=True, slots=True)
class Settlement:
    merchant_id: str
    currency: str
    source_id: str
    fees: int
    chargebacks: int
    net: int
    items: int


@store_function
def claim_settlements(run_id: str) -> Statement[list[Settlement]]:
    """Mark this run's matched items settled (each item once, ever) and sum the
    new ones per merchant, currency and batch, for the caller to post."""
    return fetch_all(Settlement, _SETTLE, {"run": run_id})


@store_function
def result_counts(run_id: str) -> Steps[dict[str, int]]:
    rows = yield from fetch_tuples(
        "SELECT class, count(*), count(*) FILTER (WHERE resolved) FROM reconciliation_results"
        " WHERE reconciliation_id = %s GROUP BY class",
        (run_id,),
    )
    counts = {str(class_): int(count) for class_, count, _ in rows}
    counts["resolved"] = sum(int(resolved) for _, _, resolved in rows)
    return counts
