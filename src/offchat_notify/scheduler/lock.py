"""One active scheduler across processes and machines: a Redis lock with an expiry.

The leader lock is redis-py's :class:`redis.lock.Lock`, holding a readable
``host:pid:random`` token. The scheduler that holds it runs the jobs and
renews it while it lives; the others wait on standby and take over once it
expires (a leader killed with SIGKILL stops renewing). Each tick is also
claimed in Redis (:meth:`RedisLeaderLock.claim_tick`), by its scheduled time
and only forwards, so even a leader that was paused past its lock and has not
noticed yet cannot run a tick that its successor ran, nor an older one.

By default the lock shares the connection pool of the project's dramatiq
Redis broker (:func:`broker_client`), so it inherits whatever that broker
connects with: TLS, a unix socket, Sentinel, credentials.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from typing import Any

from django.apps import apps

from offchat_notify.conf import get_settings
from offchat_notify.exceptions import NotifyConfigurationError

#: Claim the tick ARGV[1] (scheduled time, Unix ms) in KEYS[1] if it is past
#: the last claimed one; remember it ARGV[2] ms. redis-py has no equivalent.
_CLAIM = """
local last = redis.call('get', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
return 1
"""


class RedisLeaderLock:
    """The leader lock (redis-py's Lock) and the per-tick claims, in one Redis.

    ``client`` is a ``redis.Redis``; ``ttl`` is in seconds. The lock's value
    is :attr:`token`, ``host:pid:random``, so :meth:`holder` says who leads.
    """

    locked = True

    def __init__(self, client: Any, ttl: float, key: str = "offchat_notify:scheduler") -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Not thread-local: the loop acquires, renews and releases from one
        # thread, but the token belongs to the process, not to that thread.
        self.lock = client.lock(key, timeout=ttl, blocking=False, thread_local=False)
        self._claim = client.register_script(_CLAIM)

    @classmethod
    def from_url(
        cls, url: str, ttl: float, key: str = "offchat_notify:scheduler"
    ) -> RedisLeaderLock:
        """A lock on its own connection to the Redis at ``url`` (``SCHEDULER_LOCK_URL``)."""
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, ttl, key)

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        return bool(self.lock.acquire(blocking=False, token=self.token))

    def renew(self) -> bool:
        """Restart the TTL; False if the lock expired or another scheduler holds it."""
        from redis.exceptions import LockError

        try:
            return bool(self.lock.reacquire())
        except LockError:  # LockNotOwnedError: lost; plain LockError: never held
            return False

    def release(self) -> None:
        """Give the lock up if this scheduler holds it; otherwise do nothing."""
        from redis.exceptions import LockError

        # Not held, or expired and maybe taken since: not ours to delete.
        with contextlib.suppress(LockError):
            self.lock.release()

    def holder(self) -> str | None:
        """The token (``host:pid:random``) of the scheduler holding the lock, if any."""
        value = self.client.get(self.key)
        if value is None:
            return None
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    def claim_tick(self, job: str, tick_ms: int, keep_ms: int) -> bool:
        """True for the first scheduler to claim the tick of ``job`` scheduled at ``tick_ms``.

        ``tick_ms`` is the tick's scheduled time (Unix ms). A claim succeeds
        only past the last claimed tick, so a tick runs at most once, and a
        late scheduler can never run a tick older than one already run. The
        record is kept ``keep_ms``, long enough to tell what a new leader missed.
        """
        return bool(self._claim(keys=[self._tick_key(job)], args=[tick_ms, keep_ms]))

    def last_tick(self, job: str) -> int | None:
        """The scheduled time (Unix ms) of the last claimed tick of ``job``, if remembered."""
        value = self.client.get(self._tick_key(job))
        return int(value) if value else None

    def close(self) -> None:
        """Close this lock's own connections; a broker's pool it shares stays open."""
        self.client.close()

    def _tick_key(self, job: str) -> str:
        return f"{self.key}:tick:{job}"

    def __str__(self) -> str:
        return f"Redis lock {self.key!r} at {describe(self.client)} (ttl {self.ttl_ms / 1000:g}s)"


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

    def close(self) -> None:
        pass

    def __str__(self) -> str:
        return "no lock (single scheduler; set OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] to coordinate)"


def broker_client() -> Any | None:
    """The Redis client of the project's dramatiq broker, or None if that is not Redis.

    Only asked when django_dramatiq is installed: it sets the broker from
    ``DRAMATIQ_BROKER`` at startup, where ``dramatiq.get_broker()`` would
    otherwise create a default RabbitMQ broker.
    """
    if not apps.is_installed("django_dramatiq"):
        return None
    try:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker
    except ImportError:  # no dramatiq or no redis-py: the broker is not Redis
        return None
    broker = dramatiq.get_broker()
    return broker.client if isinstance(broker, RedisBroker) else None


def lock_configured() -> bool:
    """Whether the scheduler has a Redis lock (without connecting to it).

    True when ``SCHEDULER_LOCK_URL`` is a URL, or when it is None and the
    dramatiq broker is Redis; False when it is ``""`` or there is no Redis.
    """
    url = get_settings().SCHEDULER_LOCK_URL
    if url is not None:
        return bool(url)
    return broker_client() is not None


def get_lock() -> RedisLeaderLock | NoLock:
    """The scheduler's lock, from ``SCHEDULER_LOCK_URL`` or else the Redis broker.

    An explicit URL gets a connection of its own; by default the lock uses
    the broker's connection pool. ``""``, or no Redis broker, means NoLock.
    """
    conf = get_settings()
    url = conf.SCHEDULER_LOCK_URL
    ttl, key = conf.SCHEDULER_LOCK_TTL, conf.SCHEDULER_LOCK_KEY
    if url == "":
        return NoLock()
    if url is None:
        client = broker_client()
        if client is None:
            return NoLock()
        import redis  # installed: the broker uses it

        pool = getattr(client, "connection_pool", None)
        # A client of our own on the broker's pool: closing it never closes the broker's.
        return RedisLeaderLock(
            client if pool is None else redis.Redis(connection_pool=pool), ttl, key
        )
    try:
        return RedisLeaderLock.from_url(url, ttl, key)
    except ImportError as e:
        raise NotifyConfigurationError(
            'The scheduler lock needs redis-py: pip install "offchat-notify[redis]".'
        ) from e
    except ValueError as e:  # redis-py's message never contains the URL (nor its password)
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] is not a Redis URL ({e}). Give a "
            "redis://, rediss:// or unix:// URL, None to use the Redis broker's "
            "connection, or '' to run a single scheduler without a lock."
        ) from e


def describe(client: Any) -> str:
    """Where ``client`` connects, for logs, never with credentials.

    ``redis://host:port/db`` (``rediss://`` with TLS), ``unix:///path?db=n``,
    or a Sentinel service; ``***@`` marks a connection with credentials.
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return type(client).__name__
    kwargs = pool.connection_kwargs
    auth = "***@" if kwargs.get("password") or kwargs.get("username") else ""
    db = kwargs.get("db", 0)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"Sentinel service {service!r} (db {db})"
    if kwargs.get("path"):
        return f"unix://{auth}{kwargs['path']}?db={db}"
    from redis.connection import SSLConnection

    scheme = "rediss" if issubclass(pool.connection_class, SSLConnection) else "redis"
    return f"{scheme}://{auth}{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"
