"""dramatiq's Redis broker, with idle workers woken at once and undecodable messages dead-lettered.

Use it in place of dramatiq's, in the web processes and the workers alike::

    DRAMATIQ_BROKER = {
        "BROKER": "offchat_notify.backends.dramatiq.broker.RedisBroker",
        "OPTIONS": {"url": "redis://127.0.0.1:6379/0?socket_connect_timeout=1&socket_timeout=1"},
        "MIDDLEWARE": [...],
    }

It keeps dramatiq's options, keys, Lua script and semantics (ack after
success, prefetch, delayed messages, dead-lettering, requeue on shutdown,
heartbeats); two things differ.

**Idle workers wake at once.** dramatiq's idle consumer polls: after an empty
fetch it sleeps 5 ms, then twice as long each time up to the worker timeout
(``dramatiq_worker_timeout``, 1 s), so a message sent after a quiet spell waits
up to a second. Here an enqueue also pushes a token onto the list
``<namespace>:__wake__.<queue>``, in the same Lua call as the message (no
extra round trip; the token lands after the message). An idle consumer,
instead of sleeping, sends ``BLPOP`` on that list for the worker timeout and
the fetch script behind it, pipelined on a connection of its own: Redis runs
the fetch the moment a token comes or the wait ends. Why a list and ``BLPOP``:

* A token outlives its push: one pushed between a consumer's empty fetch and
  its ``BLPOP`` is still there, so there is no race. Pub/sub drops what is
  published while nobody listens, and wakes every worker per message;
  keyspace notifications need ``notify-keyspace-events`` on the server, which
  managed Redis services often forbid. One token wakes one consumer; one
  woken for a message another took fetches nothing and waits again.
* Nothing depends on a token. One lost (a web process on dramatiq's own
  broker, the key deleted, a failover) costs at most one worker timeout, as
  dramatiq's longest backoff: the wait ends and the fetch behind it runs. The
  list is capped (``WAKE_TOKENS``) and expires (``WAKE_TTL_MS``), so stale
  tokens cost a few empty fetches at most.
* The idle cost: one round trip per worker timeout, against dramatiq's 1.3
  fetches a second, and seven more after each message while its backoff
  grows; idle CPU is lower (benchmarks/broker_wakeup.py). The wait's reply is
  awaited for the wait plus the URL's ``socket_timeout``, so that timeout
  still bounds a hung Redis; the pool's shared connections are never held by
  a wait. Waits are not shorter than 100 ms: Redis ends blocking commands on
  its ``hz`` clock.
* The delay queues (``.DQ``) and a consumer holding ``prefetch`` messages keep
  dramatiq's backoff. A delayed message falls due on the worker's clock and is
  then enqueued to its queue, which wakes a consumer.

**Undecodable messages are dead-lettered.** dramatiq's consumer fetches
messages in batches (``prefetch``) and decodes them one by one; one that does
not decode raises out of the consumer, and (dramatiq 2.2,
tests/integration/test_faults_poison.py) it and the rest of its batch stay in
the worker's ack set, never processed, until the worker stops and Redis hands
them, poison included, to the next worker. Here the consumer moves it to the
queue's dead-letter set (``<namespace>:<queue>.XQ``, kept for
``dead_message_ttl``), logs why, and carries on with the batch.

RabbitMQ needs neither: it pushes messages to idle consumers, and dramatiq's
RabbitMQ consumer rejects an undecodable message, which RabbitMQ dead-letters.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker as DramatiqRedisBroker
from dramatiq.brokers.redis import _RedisConsumer, _scripts
from dramatiq.common import compute_backoff, current_millis
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.message import Message

__all__ = ["WAKE_TOKENS", "WAKE_TTL_MS", "RedisBroker", "wake_key"]

logger = logging.getLogger(__name__)

#: At most this many wake tokens wait in a queue's list (those of nobody's waiting).
WAKE_TOKENS = 16
#: A wake list expires this long after its first token (those of nobody's waiting).
WAKE_TTL_MS = 60_000

# Appended to dramatiq's dispatch script; it reads only the script's calling
# convention (KEYS[1] namespace; ARGV[1] command, ARGV[3] queue, ARGV[9:] arguments).
# ``fetch`` returns before reaching it; ``enqueue`` and ``requeue`` add messages.
_WAKE_LUA = f"""
-- offchat_notify: wake idle consumers of the queue (offchat_notify/backends/dramatiq/broker.py)
do
    local command, queue = ARGV[1], ARGV[3]
    if (command == "enqueue" or command == "requeue") and string.sub(queue, -3) ~= ".DQ" then
        local wake = KEYS[1] .. ":__wake__." .. queue
        local tokens = 1
        if command == "requeue" then
            tokens = math.min(#ARGV - 8, {WAKE_TOKENS})
        end
        local length = 0
        for i = 1, tokens do
            length = redis.call("lpush", wake, "1")
        end
        if length > {WAKE_TOKENS} then
            redis.call("ltrim", wake, 0, {WAKE_TOKENS - 1})
        elseif length > 0 and length == tokens then  -- a new list
            redis.call("pexpire", wake, {WAKE_TTL_MS})
        end
    end
end
"""
_DISPATCH = _scripts["dispatch"] + _WAKE_LUA.encode()


def wake_key(namespace: str, queue_name: str) -> str:
    """The Redis list whose tokens wake the idle consumers of ``queue_name``."""
    return f"{namespace}:__wake__.{queue_name}"


class RedisBroker(DramatiqRedisBroker):
    """dramatiq's Redis broker, whose enqueues wake idle consumers and whose consumers
    dead-letter undecodable messages."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]  # dramatiq: unannotated
        self.scripts["dispatch"] = self.client.register_script(_DISPATCH)

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WakingConsumer


class _WakingConsumer(_RedisConsumer):
    """dramatiq's consumer, waiting for a wake token where it would sleep, and
    dead-lettering undecodable messages."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        delayed = queue_name.endswith(".DQ")
        self.wake_key = None if delayed else wake_key(broker.namespace, queue_name)
        #: The last fetch found nothing: wait for a token before the next one.
        self.idle = False
        #: Whether the last wait ended on a token (False: it ran to its timeout).
        self.woken = False
        self._wake_connection: Any = None

    def __next__(self) -> Any:
        # dramatiq's _RedisConsumer.__next__ (2.2), but for the idle wait and DecodeError.
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        self.logger.warning(
                            "Found 'None' message in message cache for queue %r. "
                            "This may be a bug in dramatiq (related to #266), please report it.",
                            self.queue_name,
                        )
                        continue
                    self.misses = 0
                    try:
                        message = Message.decode(data)
                    except DecodeError as exc:
                        # Off the cache already; the rest of the batch carries on.
                        self.dead_letter_undecodable(exc)
                        continue
                    self.queued_message_ids.add(message.message_id)
                    return MessageProxy(message)

                room = self.prefetch - self.outstanding_message_count
                if room > 0 and self.wake_key is not None:
                    if not self.idle:
                        self.message_cache = self.broker.do_fetch(self.queue_name, room)
                        self.idle = not self.message_cache
                        continue
                    self.message_cache = self.wait_then_fetch(room)
                    if self.message_cache:
                        self.idle = False
                        continue
                    # A wait has passed: the consumer thread looks at its delayed
                    # messages and at shutdown before the next one.
                    return None
                # A delay queue, or prefetch full: dramatiq's fetch and backoff.
                if room > 0:
                    self.message_cache = self.broker.do_fetch(self.queue_name, room)
                    if self.message_cache:
                        continue
                self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                time.sleep(backoff_ms / 1000)
                return None
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def wait_then_fetch(self, room: int) -> list[bytes | None]:
        """Wait for a wake token (at most the worker timeout), then fetch up to ``room``.

        One round trip: ``BLPOP`` and dramatiq's fetch script pipelined on this
        consumer's own connection; Redis runs the fetch the moment the wait ends.
        """
        broker = self.broker
        seconds = max(self.timeout, 100) / 1000
        fetch = (  # what broker.do_fetch(queue, room) sends: dramatiq's calling convention
            *("fetch", current_millis(), self.queue_name, broker.broker_id),
            *(broker.heartbeat_timeout, broker.dead_message_ttl),
            *(broker._should_do_maintenance("fetch"), broker._max_unpack_size(), room),
        )
        commands = [
            ("BLPOP", self.wake_key, seconds),
            ("EVALSHA", broker.scripts["dispatch"].sha, 1, broker.namespace, *fetch),
        ]
        connection = self._connection()
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            # The first reply comes after up to ``seconds``, on top of the socket timeout.
            timeout = connection.socket_timeout
            if timeout is not None and not connection.can_read(timeout=seconds + timeout):
                connection.disconnect()
                raise redis.TimeoutError(f"No reply to BLPOP {self.wake_key} {seconds}")
            woke, fetched = (_reply(connection) for _ in commands)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise ConnectionClosed(e) from None
        self.woken = isinstance(woke, list)
        if isinstance(woke, redis.ResponseError):
            # BLPOP refused (before Redis 6 it takes whole seconds only): poll from now on.
            logger.warning("Redis refused BLPOP %s (%s); polling instead.", self.wake_key, woke)
            self.wake_key = None
        if isinstance(fetched, redis.exceptions.NoScriptError):  # Redis restarted
            return broker.do_fetch(self.queue_name, room)  # type: ignore[no-any-return]
        if isinstance(fetched, Exception):
            raise fetched
        return fetched  # type: ignore[no-any-return]

    def _connection(self) -> Any:
        """A connection of the broker's pool, this consumer's own until it closes."""
        if self._wake_connection is None:
            pool = self.broker.client.connection_pool
            try:
                self._wake_connection = pool.get_connection()
            except TypeError:  # redis-py < 5.3 wants a command name
                self._wake_connection = pool.get_connection("BLPOP")
        return self._wake_connection

    def close(self) -> None:
        connection, self._wake_connection = self._wake_connection, None
        if connection is not None:
            connection.disconnect()  # a wait may still be under way
            self.broker.client.connection_pool.release(connection)
        super().close()

    def dead_letter_undecodable(self, exc: DecodeError) -> None:
        reason = f"{type(exc.error).__name__}: {exc.error}"
        redis_id = self._redis_id_of(exc.data)
        if redis_id is None:
            logger.error(
                "Undecodable message on queue %r (%s), and its Redis id was not found in "
                "this worker's ack set; it stays there until the worker stops. Data: %.200r",
                self.queue_name,
                reason,
                exc.data,
            )
            return
        self.broker.do_nack(self.queue_name, redis_id)
        logger.error(
            "Rejected an undecodable message on queue %r (%s): moved to the dead-letter "
            "set %s.XQ as Redis message id %s. Data: %.200r",
            self.queue_name,
            reason,
            self.queue_name.removesuffix(".DQ"),
            redis_id,
            exc.data,
        )

    def _redis_id_of(self, data: bytes) -> str | None:
        """The Redis id of a fetched message, found by its data in this consumer's ack set.

        The fetch script returns message data without ids. Every message this
        consumer has fetched and not acknowledged is in its ack set; the other
        ones decoded, so their data differs from ``data``.
        """
        broker = self.broker
        namespace = broker.namespace
        acks = f"{namespace}:__acks__.{broker.broker_id}.{self.queue_name}"
        messages = f"{namespace}:{self.queue_name}.msgs"
        ids = sorted(broker.client.smembers(acks))
        if not ids:
            return None
        for redis_id, stored in zip(ids, broker.client.hmget(messages, ids), strict=True):
            if stored == data:
                return redis_id.decode() if isinstance(redis_id, bytes) else redis_id
        return None


def _reply(connection: Any) -> Any:
    """The next reply on ``connection``; an error reply is returned, not raised, so
    that the replies after it are read too."""
    try:
        return connection.read_response()
    except redis.ResponseError as e:
        return e
