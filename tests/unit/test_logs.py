"""What a log line must never hold, masked before it is written."""

import logging

import pytest

from telemetry.logs import redact
from telemetry.logs import register_secret
from tests.support.card_numbers import SHAPES
from tests.support.card_numbers import holds_pan


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("declined card 4111 1111 1111 1111 at checkout", "4111 1111 1111 1111"),
        ("cannot reach postgresql://paystream:s3cr3t-pass@db:5432/paystream", "s3cr3t-pass"),
        ("retrying redis://:hunter2hunter2@cache:6379/0", "hunter2hunter2"),
        ("a key sk_aB3dE5fG7hI9jK1lM3nO5pQ7 was used", "sk_aB3dE5fG7hI9jK1lM3nO5pQ7"),
        (
            "signed with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ],
)
def test_secrets_and_card_numbers_are_masked_in_log_lines(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_a_registered_secret_setting_is_masked_wherever_it_appears() -> None:
    register_secret("0123456789abcdef-pepper")
    assert "0123456789abcdef" not in redact("pepper is 0123456789abcdef-pepper, oops")


def test_the_log_handler_masks_the_message_arguments_and_the_traceback() -> None:
    from telemetry.logs import configure_logging

    try:
        raise ValueError("bad card 4111111111111111")
    except ValueError:
        record = logging.LogRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "charging %s",
            ("5555555555554444",),
            exc_info=__import__("sys").exc_info(),
        )
    configure_logging("INFO", "json")
    try:
        line = logging.getLogger().handlers[0].format(record)
    finally:
        logging.getLogger().handlers.clear()
    assert "charging" in line and "5555555555554444" not in line
    assert "ValueError" in line and "4111111111111111" not in line


def test_settings_read_secrets_and_urls_from_files_and_mask_them(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from paystream import settings as module

    (tmp_path / "pepper").write_text("file-pepper-0123456789\n")
    (tmp_path / "db").write_text("postgresql://ps:db-password-from-file@db:5432/ps\n")
    monkeypatch.setenv("PAYSTREAM_KEY_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "db"))
    module.settings.cache_clear()
    try:
        loaded = module.settings()
        assert loaded.key_pepper.get_secret_value() == "file-pepper-0123456789"
        assert loaded.database_url.endswith("@db:5432/ps")
        assert "file-pepper-0123456789" not in repr(loaded)
        line = redact("pepper file-pepper-0123456789, password db-password-from-file")
        assert "file-pepper" not in line and "db-password-from-file" not in line
    finally:
        module.settings.cache_clear()


def _render(fmt: str, emit: object) -> str:
    import io

    from telemetry.logs import clear_context
    from telemetry.logs import configure_logging

    configure_logging("INFO", fmt)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        emit()  # type: ignore[operator]
    finally:
        clear_context()
        logging.getLogger().handlers.clear()
    return stream.getvalue()


def test_a_json_line_carries_the_bound_request_and_payment_ids() -> None:
    import json

    from telemetry.logs import bind_context

    def emit() -> None:
        bind_context(request_id="req_1", payment_id="pay_1")
        logging.getLogger("paystream.test").info("captured %d", 1250)

    line = json.loads(_render("json", emit))
    assert line["event"] == "captured 1250" and line["level"] == "info"
    assert line["request_id"] == "req_1" and line["payment_id"] == "pay_1"
    assert line["logger"] == "paystream.test" and "timestamp" in line and "pid" in line


def test_a_card_number_is_masked_in_the_message_in_bound_values_and_in_tracebacks() -> None:
    from telemetry.logs import bind_context

    def emit() -> None:
        bind_context(request_id="4111 1111 1111 1111")
        try:
            raise ValueError("card 5555555555554444")
        except ValueError:
            logging.getLogger("paystream.test").exception("charging 4012888888881881")

    for fmt in ("json", "console"):
        text = _render(fmt, emit)
        assert "ValueError" in text
        for pan in ("4111 1111 1111 1111", "5555555555554444", "4012888888881881"):
            assert pan not in text, (fmt, text)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_card_number_in_any_shape_is_masked_in_json_and_console_lines(shape: str) -> None:
    from telemetry.logs import bind_context

    def emit() -> None:
        bind_context(request_id=shape)
        logging.getLogger("paystream.test").warning("declined %s at checkout", shape)

    for fmt in ("json", "console"):
        text = _render(fmt, emit)
        assert "declined" in text and not holds_pan(text), (fmt, text)


def test_the_console_format_is_one_readable_line_with_the_context_as_key_values() -> None:
    from telemetry.logs import bind_context

    def emit() -> None:
        bind_context(request_id="req_2")
        logging.getLogger("paystream.test").warning("slow PSP")

    text = _render("console", emit)
    assert text.count("\n") == 1
    assert "[warning" in text and "slow PSP" in text and "request_id=req_2" in text
