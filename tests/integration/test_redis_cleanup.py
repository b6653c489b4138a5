"""A test run leaves no key in the shared Redis (issue #12).

The run's brokers, workers and schedulers keep their keys under
``REDIS_NAMESPACE`` (``offchat-test-<pid>``); at the end of the session
tests/conftest.py deletes them. Checked with a run of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from tests.helpers import ROOT

#: The inner run's conftest: the suite's session fixture, and the Redis it needs.
CONFTEST = "from tests.conftest import _clean_redis_namespace, redis_url  # noqa: F401\n"
INNER = """
from dramatiq.brokers.redis import RedisBroker
from django.conf import settings


def test_leaves_keys_behind(redis_url):
    broker = RedisBroker(url=redis_url, namespace=settings.REDIS_NAMESPACE)
    broker.declare_queue("probe")
    broker.client.zadd(f"{settings.REDIS_NAMESPACE}:__heartbeats__", {"worker": 1})
    broker.client.set(f"{settings.REDIS_NAMESPACE}:__acks__.worker.probe", 1)
    assert broker.client.keys(f"{settings.REDIS_NAMESPACE}:*")
"""


def test_a_run_deletes_its_redis_keys_at_the_end(redis_url, tmp_path):
    import redis

    namespace = f"offchat-test-{uuid.uuid4().hex[:12]}"
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {**os.environ, "TEST_REDIS_NAMESPACE": namespace, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_inner.py"), "-c", "pyproject.toml"]
        + ["--rootdir", str(ROOT), "-q", "-p", "no:randomly"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{namespace}*")) == []
    finally:
        client.close()
