from datetime import UTC
from datetime import datetime

import pytest

from payments.ids import is_id
from payments.ids import new_id
from payments.money import Money
from payments.money import exponent
from payments.money import is_currency
from payments.records import PaymentRecord


def test_currencies_are_iso_4217_codes_in_upper_case_with_their_minor_units() -> None:
    assert is_currency("EUR") and is_currency("JPY") and is_currency("KWD")
    assert not is_currency("eur") and not is_currency("XYZ") and not is_currency("EURO")
    assert (exponent("EUR"), exponent("JPY"), exponent("KWD")) == (2, 0, 3)


def test_recent_iso_4217_codes_are_currencies_and_units_without_minor_units_are_not() -> None:
    # Madagascar's ariary, Venezuela's digital bolívar (2021), the Caribbean guilder (2025)
    assert all(is_currency(code) for code in ("MGA", "VED", "XCG"))
    assert (exponent("VED"), exponent("XCG"), exponent("CLF")) == (2, 2, 4)
    # Gold, the "no currency" code and the testing code have no minor unit to charge in
    assert not any(is_currency(code) for code in ("XAU", "XXX", "XTS"))


def test_money_prints_in_major_units_per_currency() -> None:
    assert str(Money(1999, "EUR")) == "19.99 EUR"
    assert str(Money(1999, "JPY")) == "1999 JPY"
    assert str(Money(1005, "KWD")) == "1.005 KWD"
    assert str(Money(12345, "CLF")) == "1.2345 CLF"


def test_money_refuses_unknown_currencies_and_negative_amounts() -> None:
    with pytest.raises(ValueError):
        Money(1, "XYZ")
    with pytest.raises(ValueError):
        Money(-1, "EUR")


def test_ids_carry_their_prefix_and_sort_by_creation_time() -> None:
    earlier = new_id("pay", now_ms=1_700_000_000_000)
    later = new_id("pay", now_ms=1_700_000_000_001)
    assert earlier < later
    assert is_id(earlier, "pay") and not is_id(earlier, "evt")
    assert len({new_id("pay") for _ in range(1000)}) == 1000


def test_a_payment_record_made_without_an_id_is_a_new_payment_with_a_new_id() -> None:
    now = datetime.now(UTC)
    fields = {
        "merchant_id": "mer_1",
        "order_id": "order-1",
        "amount": 1000,
        "currency": "EUR",
        "capture_method": "automatic",
        "method_token": "tok_visa",
        "psp": "simulator",
        "created_at": now,
        "updated_at": now,
    }
    first, second = PaymentRecord(**fields), PaymentRecord(**fields)
    assert first.id.startswith("pay_") and second.id.startswith("pay_")
    assert first.id != second.id
    assert (first.status, first.authorized_amount, first.captured_amount) == ("PENDING", 0, 0)
