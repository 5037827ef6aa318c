"""Real Postgres and Redis for the test session, started by the stack launcher's
own classes. A test that needs them and cannot start them fails; it never skips."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stack.ports import free_ports
from stack.postgres import PostgresServer
from stack.postgres import cluster_folder
from stack.redis import RedisServer

# Durability off: test data is thrown away, and commits get ~10x cheaper.
FAST_POSTGRES = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def make_root(prefix: str) -> Path:
    """A scratch folder the postgres service user can reach (mkdtemp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    return root


@dataclass
class Servers:
    root: Path
    postgres: PostgresServer
    redis: RedisServer

    @classmethod
    def start(cls, root: Path) -> Servers:
        pg_port, redis_port = free_ports(2)
        postgres = PostgresServer(
            data_dir=cluster_folder(root),
            port=pg_port,
            password="test-postgres-password",
            log_path=root / "logs" / "postgres.log",
            options=FAST_POSTGRES,
        )
        postgres.initialize()
        postgres.start()
        redis = RedisServer(
            data_dir=root / "redis",
            port=redis_port,
            password="test-redis-password",
            log_path=root / "logs" / "redis.log",
        )
        try:
            redis.start()
        except BaseException:
            postgres.stop()
            raise
        return cls(root, postgres, redis)

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)
