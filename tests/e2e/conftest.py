from collections.abc import Iterator

import pytest

from tests.support.servers import make_root
from tests.support.stack import RunningStack, remove, start_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """One `paystream up` for the e2e tests, with its own Postgres and Redis."""
    root = make_root("paystream-e2e-")
    running = start_stack(root, workers=2)
    yield running
    exit_code = running.stop()
    remove(root)
    assert exit_code == 0, "paystream up did not stop cleanly on Ctrl-C"
