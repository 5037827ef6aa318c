import pytest

from payments.card_data import contains_pan, find_pan_path, luhn_valid, mask_pans

TEST_PANS = [
    "4111111111111111",  # Visa
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # Amex, 15 digits
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "4222222222222",  # Visa, 13 digits
    "6250941006528599",  # UnionPay
]


@pytest.mark.parametrize("pan", TEST_PANS)
def test_a_test_card_number_passes_luhn_and_is_detected(pan: str) -> None:
    assert luhn_valid(pan)
    assert contains_pan(pan)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111  1111  1111  1111",
        "card: 4111111111111111, exp 12/30",
        "pan=4111111111111111;",
        "tok_4111111111111111",
        "12 4111 1111 1111 1111 34",
    ],
)
def test_a_card_number_is_found_however_it_is_grouped_or_wrapped(text: str) -> None:
    assert contains_pan(text)


@pytest.mark.parametrize(
    "text",
    [
        "tok_visa",
        "4111111111111112",  # fails Luhn
        "1732440000000",  # a Unix millisecond timestamp
        "order-2026-11-24-000123",
        "550e8400-e29b-41d4-a716-446655440000",
        "41111111111",  # too short
        "41111111111111111111111",  # 23 digits: not a PAN
        "e4111111111111111f",  # inside a hex identifier
        "4f2a5555555555554444bd90aa13c7e1",  # a uuid4().hex with a long digit run
        "45555555-5555-4444-8d90-aa13c7e12345",  # a UUID whose first groups are digits
        "",
    ],
)
def test_things_that_are_not_card_numbers_pass(text: str) -> None:
    assert not contains_pan(text)


def test_masking_replaces_every_card_number_and_keeps_the_rest() -> None:
    masked = mask_pans("paid with 4111 1111 1111 1111 and 5555555555554444 today")
    assert masked == "paid with [REDACTED PAN] and [REDACTED PAN] today"


def test_a_card_number_anywhere_in_a_json_document_is_located_by_pointer() -> None:
    assert find_pan_path({"metadata": {"note": "4111111111111111"}}) == "/metadata/note"
    assert find_pan_path({"items": [1, {"n": 4111111111111111}]}) == "/items/1/n"
    assert find_pan_path({"4111111111111111": "key"}) == "/4111111111111111"
    assert find_pan_path({"amount": 4.111111111111111e15}) == "/amount"
    assert find_pan_path("4111111111111111") == "/"
    assert find_pan_path({"amount": 1999, "ok": True, "none": None}) is None
