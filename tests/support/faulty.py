"""A stack for fault tests, driven through the launcher's Python API so a test
can kill and restart its processes, and the simulator's knobs."""

from __future__ import annotations

from typing import Any

import httpx

from drill.runner import DRILL_SETTINGS
from stack.description import StackInfo
from stack.description import StackOptions
from stack.launcher import Stack
from stack.scratch import on_free_ports
from tests.support.servers import make_root

FAST = {
    **DRILL_SETTINGS,
    "PAYSTREAM_JANITOR_IDLE_SECONDS": "2",
    "PAYSTREAM_JANITOR_SCHEDULE": "1,2,4,8,16,32",
}

CALM = {
    "errorRate": 0,
    "timeoutRate": 0,
    "lostResponseRate": 0,
    "webhookOnlyRate": 0,
    "latencyMs": 0,
    "jitterMs": 0,
    "outages": [],
    "hangMs": 1500,
    "webhookDelayMs": 0,
    "webhookDuplicateRate": 0,
    "webhookReorderRate": 0,
    "silentRate": 0,
    "settlementMissingRows": 0,
    "settlementExtraRows": 0,
    "settlementAmountOff": 0,
    "settlementCurrencyOff": 0,
    "settlementDuplicateRows": 0,
    "chargebackRate": 0,
}


def start_faulty_stack() -> Stack:
    options = StackOptions(data_dir=make_root("paystream-faults-"), workers=2, threads=8, env=FAST)
    stack = Stack(on_free_ports(options))
    stack.start()
    return stack


def knobs(info: StackInfo, **values: Any) -> None:
    httpx.patch(f"{info.simulator_url}/_admin/faults", json=values).raise_for_status()
