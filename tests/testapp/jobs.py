"""Periodic jobs of the test host, named by dotted path in SCHEDULE (never @periodic here).

``record`` is what the scheduler process tests count: each run appends
``"<unix time> <pid>"`` to the Redis list named by ``TEST_SCHEDULER_RUNS_KEY``,
so a test sees every run, when it happened, and which process ran it.
"""

from __future__ import annotations

import os
import time

#: Runs in this process, for the unit tests.
calls: list[float] = []


def record() -> str:
    stamp = f"{time.time():.6f} {os.getpid()}"
    calls.append(time.time())
    key = os.environ.get("TEST_SCHEDULER_RUNS_KEY")
    if key:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        try:
            client.rpush(key, stamp)
        finally:
            client.close()
    return stamp


def fail() -> None:
    raise RuntimeError("this job always fails")


not_callable = 42
