"""Secrets never reach output (issue #12, item 7)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from offchat_notify.scheduler.lock import get_lock


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:p@ss@redis.internal:6379/0",
        "redis://:s3cr@t@redis.internal:6379/1",
        "redis://redis.internal:6379/0?password=s3cret",
        "rediss://admin:pa%40ss@redis.internal:6380/0",
    ],
)
def test_the_lock_describes_its_redis_without_the_password(url):
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": url}):
        lock = get_lock()
        try:
            shown = str(lock)
        finally:
            lock.close()
    assert "redis.internal" in shown
    for secret in ("p@ss", "ss@", "s3cr", "pa%40ss", "pa@ss", "s3cret"):
        assert secret not in shown
    assert "***@" in shown
