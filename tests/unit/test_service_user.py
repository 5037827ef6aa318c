"""As root, Postgres runs as a service user, made when the machine has none."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from stack.service_user import ensure_user
from stack.service_user import reaches

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making a user needs root")


def test_two_launchers_making_the_same_missing_user_at_once_both_get_it() -> None:
    name = f"pst-{uuid.uuid4().hex[:8]}"
    got: list[int] = []
    barrier = threading.Barrier(2)

    def make() -> None:
        barrier.wait()
        got.append(ensure_user(name).pw_uid)

    threads = [threading.Thread(target=make) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        entry = pwd.getpwnam(name)
        assert got == [entry.pw_uid, entry.pw_uid]
        assert entry.pw_shell == "/usr/sbin/nologin"
        assert ensure_user(name).pw_uid == entry.pw_uid
        # It runs programs through runuser, its login shell notwithstanding.
        assert reaches(name, Path(tempfile.gettempdir()))
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
