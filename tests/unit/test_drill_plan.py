"""The chaos run's workload and fault schedule are functions of the seed."""

from __future__ import annotations

from collections import Counter

from drill.chaos_plan import FAULT_KINDS
from drill.chaos_plan import FIRST
from drill.chaos_plan import LAST
from drill.chaos_plan import ChaosOptions
from drill.chaos_plan import fault_schedule
from drill.plan import make_plans


def test_the_same_seed_gives_the_same_workload_and_another_seed_another() -> None:
    assert make_plans(500, seed=3) == make_plans(500, seed=3)
    assert make_plans(500, seed=3) != make_plans(500, seed=4)


def test_the_workload_mixes_every_kind_of_payment_life() -> None:
    plans = make_plans(2000, seed=11)
    assert Counter(p.capture_method for p in plans).keys() == {"automatic", "manual"}
    manual = Counter(p.then for p in plans if p.capture_method == "manual")
    assert manual.keys() == {"capture", "partial_capture", "cancel"}
    assert any(len(p.refunds) == 2 for p in plans) and any(p.refunds == (None,) for p in plans)
    assert 0.1 < sum(p.resend for p in plans) / len(plans) < 0.3
    for plan in plans:
        if plan.capture_amount is not None:
            assert 0 < plan.capture_amount < plan.amount
        partials = [amount for amount in plan.refunds if amount is not None]
        assert sum(partials) < (plan.capture_amount or plan.amount) or not partials


def test_the_same_seed_gives_the_same_fault_schedule() -> None:
    options = ChaosOptions(payments=2000, seed=22)
    assert fault_schedule(options) == fault_schedule(options)
    assert fault_schedule(options) != fault_schedule(ChaosOptions(payments=2000, seed=23))


def test_every_fault_kind_is_scheduled_once_per_round_within_the_run() -> None:
    for payments, rounds in ((150, 1), (2000, 3)):
        schedule = fault_schedule(ChaosOptions(payments=payments, seed=5))
        assert Counter(f.kind for f in schedule) == {kind: rounds for kind in FAULT_KINDS}
        assert [f.at for f in schedule] == sorted(f.at for f in schedule)
        assert all(FIRST <= f.at <= LAST and 0.5 <= f.seconds <= 4.0 for f in schedule)
