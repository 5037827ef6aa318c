"""A run on a stack of its own (drill, chaos, bench) stopped by SIGTERM, as a
CI job's timeout stops it: it leaves no process and no folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from stack.ports import wait_until


def test_a_drill_stopped_by_sigterm_stops_its_stack_and_removes_its_folder(
    tmp_path: Path,
) -> None:
    # The drill's temporary folder is made under TMPDIR: here, where we look.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    said = (tmp_path / "drill.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "paystream", "drill", "--payments", "5000"],
        env=env,
        cwd=tmp_path,
        stdout=said,
        stderr=subprocess.STDOUT,
    )
    try:
        stack_file = wait_until(
            lambda: next(tmp_path.glob("paystream-drill-*/stack.json"), None),
            timeout=120,
            what="the drill's stack to start",
        )
        folder = stack_file.parent
        # Its Postgres, Redis, simulator, gateway, worker, relay, janitor, webhooks.
        stack = psutil.Process(run.pid).children(recursive=True)
        assert len(stack) >= 8, stack
        run.send_signal(signal.SIGTERM)
        exit_code = run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        said.close()
    assert exit_code == 128 + signal.SIGTERM, (tmp_path / "drill.log").read_text()[-3000:]
    assert not folder.exists()
    assert [process for process in stack if process.is_running()] == []
