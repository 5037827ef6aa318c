"""The simulator's book: every charge, capture, void and refund it made.

Kept in SQLite next to the stack's data so it outlives a restart, as a real
PSP's records would. The simulator serves one process on one event loop, so
each operation below runs whole without interleaving.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import cast

from psp.simulator.outcomes import AUTHENTICATION_FAILED
from psp.simulator.outcomes import asks_authentication
from psp.simulator.outcomes import authorization_outcome
from psp.simulator.outcomes import refund_outcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    token TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    authorized_amount INTEGER NOT NULL DEFAULT 0,
    captured_amount INTEGER NOT NULL DEFAULT 0,
    refunded_amount INTEGER NOT NULL DEFAULT 0,
    decline_code TEXT,
    decline_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    captured_at TEXT,
    capture INTEGER NOT NULL DEFAULT 0,
    next_action_url TEXT,
    return_url TEXT
);
CREATE INDEX IF NOT EXISTS charges_reference ON charges (reference);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL REFERENCES charges (id),
    reference TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_reference ON refunds (reference);
CREATE TABLE IF NOT EXISTS operations (
    idempotency_key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


# Columns later versions added, for books written before them.
_ADDED_COLUMNS = {
    "captured_at": "TEXT",
    "capture": "INTEGER NOT NULL DEFAULT 0",
    "next_action_url": "TEXT",
    "return_url": "TEXT",
}


class BookError(Exception):
    """A request the bank refuses; nothing was booked."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: bytes


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _charge_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "reference": row["reference"],
        "status": row["status"],
        "amount": row["amount"],
        "currency": row["currency"],
        "authorizedAmount": row["authorized_amount"],
        "capturedAmount": row["captured_amount"],
        "refundedAmount": row["refunded_amount"],
        "declineCode": row["decline_code"],
        "declineMessage": row["decline_message"],
        # Where the customer authenticates, while the charge waits for them.
        "nextActionUrl": row["next_action_url"] if row["status"] == "requires_action" else None,
        "returnUrl": row["return_url"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _refund_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "paymentId": row["charge_id"],
        "reference": row["reference"],
        "amount": row["amount"],
        "status": row["status"],
        "failureCode": row["failure_code"],
        "createdAt": row["created_at"],
    }


class Book:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(charges)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in columns:  # a book written by an earlier version
                self._db.execute(f"ALTER TABLE charges ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self._db.close()

    # --- idempotency ------------------------------------------------------

    def stored_response(self, idempotency_key: str) -> StoredResponse | None:
        row = self._db.execute(
            "SELECT request_hash, status_code, body FROM operations WHERE idempotency_key = ?",
            (idempotency_key,),
        ).fetchone()
        return None if row is None else StoredResponse(row[0], row[1], bytes(row[2]))

    def store_response(self, idempotency_key: str, response: StoredResponse) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO operations VALUES (?, ?, ?, ?, ?)",
            (idempotency_key, response.request_hash, response.status_code, response.body, _now()),
        )

    # --- operations -------------------------------------------------------

    def authorize(
        self,
        *,
        reference: str,
        amount: int,
        currency: str,
        token: str,
        capture: bool,
        challenge_base: str = "",
        return_url: str | None = None,
    ) -> dict[str, Any]:
        """`challenge_base`: the simulator's own URL, where a customer asked
        to authenticate finds the challenge page (`/challenge/{id}`)."""
        decline = authorization_outcome(token)
        now = _now()
        charge_id = "psp_" + secrets.token_hex(12)
        next_action_url = None
        if decline is not None:
            status, authorized, captured = "declined", 0, 0
        elif asks_authentication(token):
            status, authorized, captured = "requires_action", 0, 0
            next_action_url = f"{challenge_base.rstrip('/')}/challenge/{charge_id}"
        else:
            status = "captured" if capture else "authorized"
            authorized, captured = amount, (amount if capture else 0)
        self._db.execute(
            "INSERT INTO charges (id, reference, token, amount, currency, status,"
            " authorized_amount, captured_amount, decline_code, decline_message,"
            " created_at, updated_at, captured_at, capture, next_action_url, return_url)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                charge_id,
                reference,
                token,
                amount,
                currency,
                status,
                authorized,
                captured,
                decline.code if decline else None,
                decline.message if decline else None,
                now,
                now,
                now if captured else None,
                int(capture),
                next_action_url,
                return_url,
            ),
        )
        return self.charge(charge_id)

    def complete_authentication(self, charge_id: str, *, passed: bool) -> dict[str, Any]:
        """The customer's answer on the challenge page: passed, the charge
        is approved as asked (captured, or authorized for a manual capture);
        failed, it is declined."""
        charge = self._charge_row(charge_id)
        if charge["status"] != "requires_action":
            raise BookError(409, "invalid_state", f"a {charge['status']} payment is not waiting")
        now = _now()
        if not passed:
            self._db.execute(
                "UPDATE charges SET status = 'declined', decline_code = ?, decline_message = ?,"
                " updated_at = ? WHERE id = ?",
                (AUTHENTICATION_FAILED.code, AUTHENTICATION_FAILED.message, now, charge_id),
            )
            return self.charge(charge_id)
        amount, capture = charge["amount"], bool(charge["capture"])
        self._db.execute(
            "UPDATE charges SET status = ?, authorized_amount = ?, captured_amount = ?,"
            " updated_at = ?, captured_at = ? WHERE id = ?",
            (
                "captured" if capture else "authorized",
                amount,
                amount if capture else 0,
                now,
                now if capture else None,
                charge_id,
            ),
        )
        return self.charge(charge_id)

    def capture(self, charge_id: str, amount: int | None) -> dict[str, Any]:
        charge = self._charge_row(charge_id)
        if charge["status"] != "authorized":
            raise BookError(
                422, "invalid_state", f"a {charge['status']} payment cannot be captured"
            )
        amount = charge["authorized_amount"] if amount is None else amount
        if not 0 < amount <= charge["authorized_amount"]:
            raise BookError(422, "amount_exceeds_authorized", "capture exceeds the authorization")
        self._db.execute(
            "UPDATE charges SET status = 'captured', captured_amount = ?, updated_at = ?,"
            " captured_at = ? WHERE id = ?",
            (amount, _now(), _now(), charge_id),
        )
        return self.charge(charge_id)

    def void(self, charge_id: str) -> dict[str, Any]:
        """An authorization released, or a customer no longer waited for."""
        charge = self._charge_row(charge_id)
        if charge["status"] not in ("authorized", "requires_action"):
            raise BookError(422, "invalid_state", f"a {charge['status']} payment cannot be voided")
        self._db.execute(
            "UPDATE charges SET status = 'voided', updated_at = ? WHERE id = ?", (_now(), charge_id)
        )
        return self.charge(charge_id)

    def refund(self, charge_id: str, amount: int, reference: str) -> dict[str, Any]:
        charge = self._charge_row(charge_id)
        if charge["status"] != "captured":
            raise BookError(
                422, "invalid_state", f"a {charge['status']} payment cannot be refunded"
            )
        if not 0 < amount <= charge["captured_amount"] - charge["refunded_amount"]:
            raise BookError(422, "amount_exceeds_captured", "refund exceeds what is left to refund")
        decline = refund_outcome(charge["token"])
        refund_id = "psprf_" + secrets.token_hex(12)
        status = "failed" if decline else "succeeded"
        self._db.execute("BEGIN")
        self._db.execute(
            "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                refund_id,
                charge_id,
                reference,
                amount,
                status,
                decline.code if decline else None,
                _now(),
            ),
        )
        if decline is None:
            self._db.execute(
                "UPDATE charges SET refunded_amount = refunded_amount + ?, updated_at = ?"
                " WHERE id = ?",
                (amount, _now(), charge_id),
            )
        self._db.execute("COMMIT")
        return self.refund_by_id(refund_id)

    # --- reads --------------------------------------------------------------

    def charge(self, charge_id: str) -> dict[str, Any]:
        return _charge_json(self._charge_row(charge_id))

    def refund_by_id(self, refund_id: str) -> dict[str, Any]:
        row = self._db.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
        return _refund_json(row)

    def charges_for(self, reference: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM charges WHERE reference = ? ORDER BY created_at DESC", (reference,)
        ).fetchall()
        return [_charge_json(row) for row in rows]

    def refunds_for(self, reference: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM refunds WHERE reference = ? ORDER BY created_at DESC", (reference,)
        ).fetchall()
        return [_refund_json(row) for row in rows]

    def snapshot(self) -> dict[str, Any]:
        """The whole book with the checks anyone can read off it."""
        charges = [
            _charge_json(r) for r in self._db.execute("SELECT * FROM charges ORDER BY rowid")
        ]
        refunds = [
            _refund_json(r) for r in self._db.execute("SELECT * FROM refunds ORDER BY rowid")
        ]
        charged_twice = [
            row[0]
            for row in self._db.execute(
                "SELECT reference FROM charges WHERE status != 'declined'"
                " GROUP BY reference HAVING count(*) > 1"
            )
        ]
        over_refunded = [
            row[0]
            for row in self._db.execute(
                "SELECT c.reference FROM charges c JOIN refunds r ON r.charge_id = c.id"
                " WHERE r.status = 'succeeded' GROUP BY c.id"
                " HAVING sum(r.amount) > max(c.captured_amount)"
            )
        ]
        return {
            "charges": charges,
            "refunds": refunds,
            "summary": {
                "charges": len(charges),
                "approvedCharges": sum(1 for c in charges if c["status"] != "declined"),
                "refunds": len(refunds),
                "chargedTwice": charged_twice,
                "refundedBeyondCapture": over_refunded,
            },
        }

    def settled_items(self, batch: str) -> list[sqlite3.Row]:
        """What a settlement batch (a UTC date, YYYY-MM-DD) pays out: captures
        of that day, then refunds of that day."""
        return self._db.execute(
            "SELECT 'capture' AS type, id AS psp_reference, reference,"
            " reference AS payment_reference, captured_amount AS gross, currency, token"
            " FROM charges WHERE captured_amount > 0 AND substr(captured_at, 1, 10) = ?"
            " UNION ALL"
            " SELECT 'refund', r.id, r.reference, c.reference, r.amount, c.currency, c.token"
            " FROM refunds r JOIN charges c ON c.id = r.charge_id"
            " WHERE r.status = 'succeeded' AND substr(r.created_at, 1, 10) = ?",
            (batch, batch),
        ).fetchall()

    def batches(self) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT substr(captured_at, 1, 10) FROM charges"
            " WHERE captured_at IS NOT NULL UNION"
            " SELECT DISTINCT substr(created_at, 1, 10) FROM refunds WHERE status = 'succeeded'"
            " ORDER BY 1"
        ).fetchall()
        return [row[0] for row in rows]

    def _charge_row(self, charge_id: str) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM charges WHERE id = ?", (charge_id,)).fetchone()
        if row is None:
            raise BookError(404, "not_found", "no such payment")
        return cast(sqlite3.Row, row)
