"""The simulator's fault knobs at start: PAYSTREAM_SIM_<KNOB>, each knob of
its admin API in snake case, read once with the settings; a knob it does not
have, or a value it does not take, stops it with a reason."""

from __future__ import annotations

import pytest

from paystream.settings import Settings
from psp.simulator.knobs import knobs_at_start


def test_the_knobs_at_start_set_the_faults_the_webhooks_and_the_outages() -> None:
    faults, webhooks = knobs_at_start(
        {
            "timeout_rate": "0.2",
            "seed": "7",
            "hang_ms": "1500",
            "outages": "30:10,60:5",
            "webhook_duplicate_rate": "0.1",
            "webhook_delay_ms": "20",
        }
    )
    assert (faults.timeout_rate, faults.seed, faults.hang_ms) == (0.2, 7, 1500)
    assert [round(o.ends_at - o.starts_at) for o in faults.outages] == [10, 5]
    assert (webhooks.duplicate_rate, webhooks.delay_ms) == (0.1, 20)


def test_no_knobs_at_start_is_a_simulator_without_faults() -> None:
    faults, webhooks = knobs_at_start({})
    assert (faults.timeout_rate, faults.error_rate, faults.outages) == (0.0, 0.0, ())
    assert (webhooks.duplicate_rate, webhooks.reorder_rate) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"timout_rate": "0.2"}, "no fault knob named timout_rate"),
        ({"webhook_url": "http://x"}, "no fault knob named webhook_url"),
        ({"error_rate": "1.5"}, "error_rate must be between 0 and 1"),
        ({"webhook_reorder_rate": "-1"}, "reorder_rate must be between 0 and 1"),
        ({"outages": "soon"}, "an outage is STARTS_IN:LASTS"),
        ({"latency_ms": "fast"}, "latency_ms"),
    ],
)
def test_a_knob_it_does_not_have_or_a_value_it_does_not_take_is_refused(
    values: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        knobs_at_start(values)


def test_the_settings_read_the_knobs_at_start_beside_the_simulators_own_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYSTREAM_SIM_TIMEOUT_RATE", "0.3")
    monkeypatch.setenv("PAYSTREAM_SIM_WEBHOOK_DUPLICATE_RATE", "0.1")
    monkeypatch.setenv("PAYSTREAM_SIMULATOR_BOOK", "data/book.sqlite3")
    monkeypatch.setenv("PAYSTREAM_PSP_READ_TIMEOUT", "3")
    settings = Settings()
    assert settings.sim == {"timeout_rate": "0.3", "webhook_duplicate_rate": "0.1"}
    assert (settings.simulator_book, settings.psp_read_timeout) == ("data/book.sqlite3", 3.0)
