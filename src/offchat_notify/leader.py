"""One active scheduler across processes and machines: a Redis lock with an expiry.

The scheduler that holds the lock runs the jobs and renews the lock while it
lives; the others wait on standby and take over once the lock expires (a
leader killed with SIGKILL stops renewing). Each tick is also claimed in Redis
(:meth:`RedisLeaderLock.claim_tick`), by its scheduled time and only forwards,
so even a leader that was paused past its lock and has not noticed yet cannot
run a tick that its successor ran, nor an older one.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any
from urllib.parse import quote

from django.conf import settings

from .conf import get_settings
from .exceptions import NotifyConfigurationError

logger = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_CLAIM = """
local last = redis.call('get', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLeaderLock:
    """The leader lock, and the per-tick claims, in one Redis."""

    locked = True

    def __init__(self, url: str, ttl: float, key: str = "offchat_notify:scheduler") -> None:
        import redis

        self.key = key
        self.url = url
        self.ttl_ms = int(ttl * 1000)
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if value else None

    def claim_tick(self, job: str, tick_ms: int, keep_ms: int) -> bool:
        """True for the first scheduler to claim the tick of ``job`` scheduled at ``tick_ms``.

        ``tick_ms`` is the tick's scheduled time (Unix ms). A claim succeeds
        only past the last claimed tick, so a tick runs at most once, and a
        late scheduler can never run a tick older than one already run. The
        record is kept ``keep_ms``, long enough to tell what a new leader missed.
        """
        return bool(self.client.eval(_CLAIM, 1, self._tick_key(job), tick_ms, keep_ms))

    def last_tick(self, job: str) -> int | None:
        """The scheduled time (Unix ms) of the last claimed tick of ``job``, if remembered."""
        value = self.client.get(self._tick_key(job))
        return int(value) if value else None

    def _tick_key(self, job: str) -> str:
        return f"{self.key}:tick:{job}"

    def __str__(self) -> str:
        return f"Redis lock {self.key!r} at {_safe(self.url)} (ttl {self.ttl_ms / 1000:g}s)"


class NoLock:
    """Single-machine mode: no Redis, so no coordination. Run one scheduler only."""

    locked = False

    def __init__(self) -> None:
        self.token = f"{socket.gethostname()}:{os.getpid()}"
        self._ticks: dict[str, int] = {}

    def acquire(self) -> bool:
        return True

    def renew(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def holder(self) -> str | None:
        return None

    def claim_tick(self, job: str, tick_ms: int, keep_ms: int) -> bool:
        if self._ticks.get(job, -1) >= tick_ms:
            return False
        self._ticks[job] = tick_ms
        return True

    def last_tick(self, job: str) -> int | None:
        return self._ticks.get(job)

    def __str__(self) -> str:
        return "no lock (single scheduler; set OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] to coordinate)"


def lock_url() -> str | None:
    """The Redis URL of the lock: ``SCHEDULER_LOCK_URL``, else the Redis broker's own."""
    configured = get_settings().SCHEDULER_LOCK_URL
    if configured is not None:
        return configured or None  # "" forces single-machine mode
    broker = getattr(settings, "DRAMATIQ_BROKER", None) or {}
    if "redis" not in str(broker.get("BROKER", "")).lower():
        return None
    options: dict[str, Any] = broker.get("OPTIONS") or {}
    if options.get("url"):
        return str(options["url"])
    host, port, db = (
        options.get("host", "127.0.0.1"),
        options.get("port", 6379),
        options.get("db", 0),
    )
    username, password = options.get("username"), options.get("password")
    auth = ""
    if password:
        auth = f"{quote(str(username or ''), safe='')}:{quote(str(password), safe='')}@"
    return f"redis://{auth}{host}:{port}/{db}"


def get_lock() -> RedisLeaderLock | NoLock:
    url = lock_url()
    if url is None:
        return NoLock()
    try:
        conf = get_settings()
        return RedisLeaderLock(url, conf.SCHEDULER_LOCK_TTL, conf.SCHEDULER_LOCK_KEY)
    except ImportError as e:
        raise NotifyConfigurationError(
            'The scheduler lock needs redis-py: pip install "offchat-notify[redis]".'
        ) from e


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
