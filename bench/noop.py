"""The queue ceiling: a Dramatiq actor that does nothing but say when it ran,
on the same Redis and with the same worker settings as paystream's actors.

    python -m dramatiq bench.noop --processes P --threads T   (the workers)
    python -m bench.noop --count N [--rate R]                  (the producer)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from stack.ports import wait_until

QUEUE = "bench-noop"
DONE = "bench:noop:done"

_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
dramatiq.set_broker(RedisBroker(url=_url))
_client = redis.Redis.from_url(_url)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(sent_at: float) -> None:
    _client.rpush(DONE, f"{sent_at:.6f} {time.time():.6f}")


def produce(count: int, rate: float | None) -> dict[str, Any]:
    """Enqueue `count` messages, at `rate` per second or as fast as possible,
    then wait for every one to have run."""
    _client.delete(DONE)
    started = time.time()
    for index in range(count):
        if rate:
            wait = started + index / rate - time.time()
            if wait > 0:
                time.sleep(wait)
        noop.send(time.time())
    with contextlib.suppress(TimeoutError):  # "completed" below says how many ran
        wait_until(
            lambda: _client.llen(DONE) >= count,
            timeout=120,
            what=f"{count} no-op messages to run",
            interval=0.02,
        )
    pairs = [tuple(map(float, raw.split())) for raw in _client.lrange(DONE, 0, -1)]
    _client.delete(DONE)
    latencies = sorted(done - sent for sent, done in pairs)
    last = max((done for _, done in pairs), default=started)
    return {
        "count": count,
        "completed": len(pairs),
        "seconds": last - started,
        "latencies": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=None)
    options = parser.parse_args()
    json.dump(produce(options.count, options.rate), sys.stdout)


if __name__ == "__main__":
    main()
