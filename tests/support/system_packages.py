"""What the suite needs from the machine besides Python packages: programs
from Debian packages. A test that needs one says so with
`@pytest.mark.system_packages("wrk")`. Before the session runs, the missing
ones among those the selected tests need are installed, as root through
apt-get, once, under a lock (two sessions at once take turns); where that
cannot be done, each test that needs one fails, naming the package."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path

# Debian package: the program the tests run from it.
PROGRAMS = {
    "docker-compose": "docker-compose",
    "wrk": "wrk",
    "chromium": "chromium",
    "prometheus": "promtool",
}
_LOCK = Path(tempfile.gettempdir()) / "paystream-system-packages.lock"


def missing(packages: Iterable[str]) -> list[str]:
    return sorted(package for package in packages if shutil.which(PROGRAMS[package]) is None)


def install_missing(packages: Iterable[str], say: Callable[[str], None]) -> dict[str, str]:
    """Install what is missing of `packages`; why each one still missing is."""
    wanted = missing(packages)
    if not wanted:
        return {}
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return _refused(wanted, "the suite installs it only as root on Debian (apt-get)")
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = missing(wanted)  # another session may have installed them meanwhile
        if wanted:
            say(f"installing {', '.join(wanted)} for the tests (apt-get, once)")
            _apt_get(wanted)
    return _refused(missing(wanted), "apt-get could not install it")


def _apt_get(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
        subprocess.run(["apt-get", *command], env=env, capture_output=True, check=False)


def _refused(packages: list[str], why: str) -> dict[str, str]:
    return {
        package: f"{PROGRAMS[package]} is not installed and this test needs it: {why}."
        f" Install the package yourself: apt-get install {package} (Debian)"
        for package in packages
    }
