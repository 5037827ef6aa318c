from collections.abc import Iterator

import pytest

from stack.description import StackInfo
from stack.launcher import Stack
from tests.support.faulty import CALM
from tests.support.faulty import knobs
from tests.support.faulty import start_faulty_stack
from tests.support.servers import make_root
from tests.support.stack import RunningStack
from tests.support.stack import remove
from tests.support.stack import start_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """One `paystream up` for the e2e tests, with its own Postgres and Redis."""
    root = make_root("paystream-e2e-")
    # Storms of fifty requests at once with the demo key would meet the
    # per-key rate limit, which tests/integration/test_limits.py covers.
    running = start_stack(root, workers=2, env={"PAYSTREAM_RATE_LIMIT_PER_SECOND": "0"})
    yield running
    exit_code = running.stop()
    remove(root)
    assert exit_code == 0, "paystream up did not stop cleanly on Ctrl-C"


@pytest.fixture(scope="session")
def short_retries_stack() -> Iterator[RunningStack]:
    """A `paystream up` whose merchant webhooks retry once, 0.2 s after the
    first failure, then dead-letter: seconds, not the day the default takes."""
    root = make_root("paystream-short-retries-")
    env = {"PAYSTREAM_WEBHOOK_RETRY_SCHEDULE": "0.2", "PAYSTREAM_RATE_LIMIT_PER_SECOND": "0"}
    running = start_stack(root, workers=1, threads=4, env=env)
    yield running
    exit_code = running.stop()
    remove(root)
    assert exit_code == 0, "paystream up did not stop cleanly on Ctrl-C"


@pytest.fixture(scope="session")
def faulty_stack() -> Iterator[Stack]:
    """A stack for fault tests: processes a test can kill, fast retries."""
    stack = start_faulty_stack()
    yield stack
    stack.stop()
    remove(stack.data_dir)


@pytest.fixture
def info(faulty_stack: Stack) -> Iterator[StackInfo]:
    """The faulty stack, calm at the start and the end of each test."""
    info = faulty_stack.info
    assert info is not None
    calm = {**CALM, "webhookUrl": f"{info.gateway_url}/webhooks/simulator"}
    knobs(info, **calm)
    yield info
    knobs(info, **calm)
