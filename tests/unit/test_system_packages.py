"""The suite sets itself up: a test that needs a program from a Debian
package gets it installed first, or fails naming the package; never a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.system_packages import PROGRAMS
from tests.support.system_packages import missing

ROOT = Path(__file__).resolve().parents[2]


def test_a_program_not_on_the_path_is_missing_and_one_on_it_is_not(tmp_path: Path) -> None:
    (tmp_path / "wrk").write_text("#!/bin/sh\n")
    (tmp_path / "wrk").chmod(0o755)
    os.environ["PATH"], before = str(tmp_path), os.environ["PATH"]
    try:
        assert missing(["wrk", "chromium"]) == ["chromium"]
    finally:
        os.environ["PATH"] = before
    assert set(PROGRAMS) >= {"docker-compose", "wrk", "chromium", "prometheus"}


def test_where_it_cannot_install_a_test_needing_a_program_fails_naming_its_package(
    tmp_path: Path,
) -> None:
    """A session whose PATH has neither wrk nor apt-get to install it."""
    (tmp_path / "test_needs_wrk.py").write_text(
        'import pytest\n\n@pytest.mark.system_packages("wrk")\ndef test_needs_wrk():\n    pass\n'
    )
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(tmp_path),
            "-o",
            "markers=system_packages",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = " ".join(inner.stdout.split())
    assert inner.returncode == 1, said
    assert "1 error" in said and "skipped" not in said  # failed in its set-up
    assert "wrk is not installed and this test needs it" in said
    assert "apt-get install wrk" in said
