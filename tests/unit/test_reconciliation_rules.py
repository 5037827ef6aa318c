"""What a settlement line is, compared with our books: the rules as a table."""

import pytest

from payments.reconciliation import LineClass
from payments.reconciliation import Ours
from payments.reconciliation import classify
from payments.reconciliation import item_key

C = LineClass
CAPTURED = Ours("CAPTURED", 1000, "EUR")

TABLE = [
    # (record type, gross, currency, ours, first of its kind?) -> class
    ("capture", 1000, "EUR", CAPTURED, True, C.MATCHED),
    ("capture", 1000, "EUR", Ours("REFUNDED", 1000, "EUR"), True, C.MATCHED),
    ("capture", 1000, "EUR", CAPTURED, False, C.DUPLICATE),
    ("capture", 1000, "EUR", None, True, C.MISSING_INTERNALLY),
    ("capture", 1001, "EUR", CAPTURED, True, C.AMOUNT_MISMATCH),
    ("capture", 1000, "USD", CAPTURED, True, C.CURRENCY_MISMATCH),
    ("capture", 1000, "EUR", Ours("PENDING", 0, "EUR"), True, C.RESOLVABLE),
    ("capture", 1000, "EUR", Ours("FAILED", 0, "EUR"), True, C.MISSING_INTERNALLY),
    ("capture", 1000, "EUR", Ours("AUTHORIZED", 0, "EUR"), True, C.MISSING_INTERNALLY),
    ("refund", 400, "EUR", Ours("SUCCEEDED", 400, "EUR"), True, C.MATCHED),
    ("refund", 400, "EUR", Ours("SUCCEEDED", 300, "EUR"), True, C.AMOUNT_MISMATCH),
    ("refund", 400, "EUR", Ours("PENDING", 400, "EUR"), True, C.RESOLVABLE),
    ("refund", 400, "EUR", Ours("FAILED", 400, "EUR"), True, C.MISSING_INTERNALLY),
    ("refund", 400, "EUR", None, True, C.MISSING_INTERNALLY),
    ("chargeback", 1000, "EUR", CAPTURED, True, C.MATCHED),
    ("chargeback", 1200, "EUR", CAPTURED, True, C.AMOUNT_MISMATCH),
    ("chargeback", 1000, "EUR", Ours("PENDING", 0, "EUR"), True, C.MISSING_INTERNALLY),
    ("payout", 1000, "EUR", CAPTURED, True, C.MISSING_INTERNALLY),
]


@pytest.mark.parametrize(("record_type", "gross", "currency", "ours", "first", "expected"), TABLE)
def test_each_line_is_classified_as_the_table_says(
    record_type: str, gross: int, currency: str, ours: Ours | None, first: bool, expected: LineClass
) -> None:
    assert classify(record_type, gross, currency, ours, first=first) is expected


def test_an_item_is_named_by_its_type_and_both_references_not_its_batch() -> None:
    assert item_key("capture", "psp_1", "pay_1") == "capture:psp_1:pay_1"


@pytest.mark.parametrize(
    "ours", [CAPTURED, Ours("PENDING", 0, "EUR"), None], ids=["captured", "pending", "unknown"]
)
def test_a_line_the_psps_own_data_does_not_confirm_is_unconfirmed_whatever_our_books_say(
    ours: Ours | None,
) -> None:
    assert classify("capture", 1000, "EUR", ours, first=True, confirmed=False) is C.UNCONFIRMED
    assert classify("capture", 1000, "EUR", ours, first=False, confirmed=False) is C.DUPLICATE
