"""Posting rules, as tables and as properties: every entry balances, and the
PSP receivable always equals what was captured less what was refunded."""

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.ledger import AccountKind
from payments.ledger import Entry
from payments.ledger import capture_entry
from payments.ledger import refund_entry
from payments.ledger import settlement_entry

A = AccountKind

TABLE = [
    (capture_entry("pay_1", 1000, "EUR"), {A.PSP_RECEIVABLE: 1000, A.MERCHANT_PAYABLE: -1000}),
    (capture_entry("pay_1", 600, "EUR"), {A.PSP_RECEIVABLE: 600, A.MERCHANT_PAYABLE: -600}),
    (refund_entry("re_1", "pay_1", 400, "EUR"), {A.REFUNDS: 400, A.PSP_RECEIVABLE: -400}),
    (
        settlement_entry("s1", "EUR", fees=39, chargebacks=0, net=961),
        {A.FEES: 39, A.BANK: 961, A.PSP_RECEIVABLE: -1000},
    ),
    (
        settlement_entry("s2", "EUR", fees=1500, chargebacks=1000, net=-2500),
        {A.FEES: 1500, A.CHARGEBACKS: 1000, A.BANK: -2500},
    ),
    (
        settlement_entry("s3", "EUR", fees=0, chargebacks=0, net=-400),
        {A.BANK: -400, A.PSP_RECEIVABLE: 400},
    ),
]


@pytest.mark.parametrize(("entry", "postings"), TABLE)
def test_each_rule_posts_what_the_table_says_and_balances(
    entry: Entry | None, postings: dict
) -> None:
    assert entry is not None and entry.balanced()
    assert {p.account: p.amount for p in entry.postings} == postings


def test_a_settlement_that_moves_nothing_posts_nothing() -> None:
    assert settlement_entry("s", "EUR", fees=0, chargebacks=0, net=0) is None


@pytest.mark.parametrize("amount", [0, -5])
def test_a_capture_or_refund_of_nothing_is_refused(amount: int) -> None:
    with pytest.raises(ValueError):
        capture_entry("pay_1", amount, "EUR")
    with pytest.raises(ValueError):
        refund_entry("re_1", "pay_1", amount, "EUR")


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(-(10**9), 10**9))
def test_any_settlement_balances(fees: int, chargebacks: int, net: int) -> None:
    entry = settlement_entry("s", "EUR", fees=fees, chargebacks=chargebacks, net=net)
    assert entry is None or entry.balanced()


movements = st.lists(
    st.tuples(st.sampled_from(["capture", "refund"]), st.integers(1, 100_000)), max_size=40
)


@given(movements)
def test_any_sequence_of_captures_and_refunds_keeps_receivable_equal_to_captured_less_refunded(
    sequence: list[tuple[str, int]],
) -> None:
    balances: dict[AccountKind, int] = defaultdict(int)
    captured = refunded = 0
    for number, (kind, amount) in enumerate(sequence):
        if kind == "capture":
            entry = capture_entry(f"pay_{number}", amount, "EUR")
            captured += amount
        else:
            entry = refund_entry(f"re_{number}", "pay_0", amount, "EUR")
            refunded += amount
        assert entry.balanced()
        for posting in entry.postings:
            balances[posting.account] += posting.amount
    assert balances[A.PSP_RECEIVABLE] == captured - refunded
    assert sum(balances.values()) == 0


@pytest.mark.parametrize("amount", [0, -1])
def test_a_capture_or_a_refund_of_nothing_or_less_is_refused(amount: int) -> None:
    with pytest.raises(ValueError, match="a capture is a positive amount"):
        capture_entry("pay_1", amount, "EUR")
    with pytest.raises(ValueError, match="a refund is a positive amount"):
        refund_entry("re_1", "pay_1", amount, "EUR")
