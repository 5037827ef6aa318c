import ast
import hashlib
import json
import uuid
from datetime import UTC
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from payments.card_data import contains_pan
from payments.card_data import luhn_valid
from payments.card_data import mask_pans
from tests.support.card_numbers import read_digits

TEST_PANS = [
    "4111111111111111",  # Visa
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # Amex, 15 digits
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "30569309025904",  # Diners Club, 14 digits
    "4222222222222",  # Visa, 13 digits
    "6250941006528599",  # UnionPay
    "2200000000000004",  # Mir
    "6759649826438453",  # Maestro
    "6304000000000000000",  # Maestro, 19 digits
]

# Every way a separator was seen to slip through (issue #13): a run of any of these
# between digit groups still joins them.
SEPARATORS = [
    " ",
    "-",
    ".",
    "/",
    "_",
    ",",
    "+",
    "\n",
    "\r\n",
    "\t",
    "\u00a0",  # no-break space
    "\u2002",  # en space
    "\u2009",  # thin space
    "\u202f",  # narrow no-break space
    "\u3000",  # ideographic space
    "\u200b",  # zero-width space
    "\u2013",  # en dash
    "\u2014",  # em dash
    "\u2212",  # minus sign
    "     ",  # a wider gap
    " - ",
    ". ",
]

# The digits 0 to 9 of the scripts a card number was sent in.
SCRIPTS = {
    "ascii": "0123456789",
    "fullwidth": "".join(chr(0xFF10 + n) for n in range(10)),
    "arabic-indic": "".join(chr(0x0660 + n) for n in range(10)),
    "extended arabic-indic": "".join(chr(0x06F0 + n) for n in range(10)),
    "devanagari": "".join(chr(0x0966 + n) for n in range(10)),
}

WRAPPERS = [
    "{}",
    "card {} exp 12/30",
    "card{}",
    "tok{}",
    "tok_{}",
    "{}exp",
    "pan={};",
    "x\n{}\ny",
    '{{"note": "{}"}}',
    '{{"{}": "in a key"}}',
]


def in_script(digits: str, script: str) -> str:
    return "".join(SCRIPTS[script][int(d)] for d in digits)


# How each length is printed on a card (Visa 13, Diners 14, Amex 15, 16, Maestro 19).
PRINTED = {13: [4, 3, 3, 3], 14: [4, 6, 4], 15: [4, 6, 5], 16: [4, 4, 4, 4], 19: [4, 4, 4, 4, 3]}
GROUPINGS = {
    "whole": lambda n: [n],
    "as printed": lambda n: PRINTED[n],
    "in halves": lambda n: [n // 2, n - n // 2],
    "six and the rest": lambda n: [6, n - 6],
}


def grouped(pan: str, grouping: str, separator: str) -> str:
    groups, start = [], 0
    for size in GROUPINGS[grouping](len(pan)):
        groups.append(pan[start : start + size])
        start += size
    return separator.join(groups)


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
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111_1111_1111_1111",
        "4111,1111,1111,1111",
        "4111+1111+1111+1111",
        "4111\n1111\n1111\n1111",
        "4111\u00a01111\u00a01111\u00a01111",
        "4111\u20091111\u20091111\u20091111",
        "4111\u20131111\u20131111\u20131111",
        "4111     1111     1111     1111",
        "card4111111111111111",
        "tok4111111111111111",
        "cc4111111111111111",
        "4111111111111111exp",
        "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
        "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
        "3782 822463 10005",
    ],
)
def test_the_shapes_that_slipped_through_are_caught(text: str) -> None:
    assert contains_pan(text)


# Some 50,000 combinations; five hundred draws cover every separator, script and wrapper.
@settings(max_examples=500)
@given(
    pan=st.sampled_from(TEST_PANS),
    grouping=st.sampled_from(sorted(GROUPINGS)),
    separator=st.sampled_from(SEPARATORS),
    script=st.sampled_from(sorted(SCRIPTS)),
    wrapper=st.sampled_from(WRAPPERS),
)
def test_every_shape_of_a_card_number_is_caught_and_masked_whole(
    pan: str, grouping: str, separator: str, script: str, wrapper: str
) -> None:
    text = wrapper.format(grouped(in_script(pan, script), grouping, separator))
    assert contains_pan(text)
    masked = mask_pans(text)
    assert "[REDACTED PAN]" in masked and pan not in read_digits(masked)


@given(pan=st.sampled_from(TEST_PANS), key=st.booleans())
def test_a_card_number_in_a_json_key_or_value_is_caught_in_the_rendered_document(
    pan: str, key: bool
) -> None:
    document = {pan: "a note"} if key else {"note": f"paid with {pan}"}
    for rendered in (json.dumps(document), json.dumps({"outer": json.dumps(document)})):
        assert contains_pan(rendered) and pan not in read_digits(mask_pans(rendered))


@pytest.mark.parametrize(
    "text",
    [
        "tok_visa",
        "4111111111111112",  # fails Luhn
        "1732440000000",  # a Unix millisecond timestamp
        "order-2026-11-24-000123",
        "2026-11-29 12:30:45",  # 14 digits once separators go, but a year is no issuer
        "20261129123045",
        "30.11.2026 12:30:45",  # a day of 30 leads, but two-digit groups join nothing
        "4.11.2026 12:30:45.123",
        "550e8400-e29b-41d4-a716-446655440000",
        "41111111111",  # too short
        "41111111111111111111111",  # 23 digits: not a PAN
        "1111111111111117",  # passes Luhn, but no issuer starts with 1
        "8111111111111113",  # nor with 8
        "2000000000000002",  # nor in 2000 to 2199
        "4f2a5555555555554444bd90aa13c7e1",  # a uuid4().hex with a long digit run
        "45555555-5555-4444-8d90-aa13c7e12345",  # a UUID whose first groups are digits
        "00-4f2a5555555555554444bd90aa13c7e1-b7ad6b7169203331-01",  # W3C traceparent
        "+44 20 7946 0958",
        "v1.2.3 build 4512",
        "",
    ],
)
def test_things_that_are_not_card_numbers_pass(text: str) -> None:
    assert not contains_pan(text)


@given(st.uuids(version=4))
def test_a_random_uuid_or_its_hex_is_never_a_card_number(value: uuid.UUID) -> None:
    assert not contains_pan(value.hex)
    assert not contains_pan(str(value))
    assert not contains_pan(value.hex.upper())


@given(st.binary(), st.sampled_from(["md5", "sha1", "sha256"]))
def test_a_hash_in_hex_is_never_a_card_number(data: bytes, algorithm: str) -> None:
    # A digest of anything, as idempotency keys and ids are made: its hex is
    # 32, 40 or 64 hex digits that look random. (Arbitrary bytes would not
    # do: hypothesis steers them to all-digit runs no digest ever shows.)
    digest = hashlib.new(algorithm, data).hexdigest()
    assert not contains_pan(digest) and not contains_pan(digest.upper())


@given(
    moment=st.datetimes(timezones=st.just(UTC) | st.none()),
    separator=st.sampled_from(["T", " "]),
    timespec=st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_an_iso_8601_timestamp_is_never_a_card_number(
    moment: datetime, separator: str, timespec: str
) -> None:
    assert not contains_pan(moment.isoformat(separator, timespec))
    assert not contains_pan(f"at {moment.isoformat(separator, timespec)} paid")


# Unix time in milliseconds has 12 digits until September 2001, then starts with 1
# until May 2033 (in microseconds: 16 digits starting with 1 over the same years); no
# issuer range starts with 1. From May 2033 a millisecond timestamp starts with 2.
@given(st.integers(min_value=0, max_value=1_999_999_999_999))
def test_a_unix_millisecond_timestamp_is_never_a_card_number(millis: int) -> None:
    assert not contains_pan(str(millis))
    assert not contains_pan(f"evt{millis}")
    assert not contains_pan(f"{millis / 1000:.3f}")


@given(st.integers(min_value=1_000_000_000_000_000, max_value=1_999_999_999_999_999))
def test_a_unix_microsecond_timestamp_of_this_century_is_never_a_card_number(micros: int) -> None:
    assert not contains_pan(str(micros))


@settings(max_examples=300)
@given(
    pan=st.sampled_from(TEST_PANS),
    separator=st.sampled_from(SEPARATORS),
    script=st.sampled_from(sorted(SCRIPTS)),
)
def test_a_card_number_escaped_as_json_or_python_writes_it_is_caught_and_masked(
    pan: str, separator: str, script: str
) -> None:
    value = grouped(in_script(pan, script), "as printed", separator)
    for written, read in (
        (json.dumps({"note": value}), json.loads),
        (json.dumps([value], ensure_ascii=False), json.loads),
        (repr(value), ast.literal_eval),
        (ascii(value), ast.literal_eval),
    ):
        assert contains_pan(written), written
        masked = mask_pans(written)
        assert pan not in read_digits(str(read(masked))), masked


def test_an_escape_is_masked_whole_and_what_surrounds_it_is_kept() -> None:
    assert mask_pans('{"n": "4111\\n1111\\n1111\\n1111 ok"}') == '{"n": "[REDACTED PAN] ok"}'
    assert mask_pans("'\\uff14111 1111 1111 1111\\u3000'") == "'[REDACTED PAN]\\u3000'"
    assert not contains_pan("C:\\new\\4111\\1111")


def test_masking_replaces_every_card_number_and_keeps_the_rest() -> None:
    masked = mask_pans("paid with 4111 1111 1111 1111 and 5555555555554444 today")
    assert masked == "paid with [REDACTED PAN] and [REDACTED PAN] today"


def test_masking_replaces_the_characters_sent_not_their_ascii_reading() -> None:
    fullwidth = in_script("4111111111111111", "fullwidth")
    arabic = grouped(in_script("5555555555554444", "arabic-indic"), "as printed", "\u00a0")
    assert mask_pans(f"«{fullwidth}» café {arabic}!") == "«[REDACTED PAN]» café [REDACTED PAN]!"
    assert mask_pans("card4111.1111.1111.1111exp") == "card[REDACTED PAN]exp"
