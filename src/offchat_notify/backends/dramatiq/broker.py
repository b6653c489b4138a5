"""A Redis broker that dead-letters messages it cannot decode, instead of choking on them.

dramatiq's own Redis consumer fetches messages in batches (``prefetch``) and
decodes them one by one. A message that does not decode (bytes that are not
JSON, a message written by another encoder or another program) raises out of
the consumer: the consumer thread logs "Consumer encountered an unexpected
error" and restarts a few seconds later with an empty cache. Measured with
dramatiq 2.2 (tests/integration/test_faults_poison.py): the undecodable message
*and every message fetched in the same batch* stay in the worker's ack set, never
processed and never dead-lettered, for as long as the worker lives; when it
stops, Redis hands the whole batch, poison included, to the next worker.

:class:`RedisBroker` is dramatiq's :class:`dramatiq.brokers.redis.RedisBroker`
with one difference: its consumer moves an undecodable message to the queue's
dead-letter set (``<namespace>:<queue>.XQ``, kept for ``dead_message_ttl``),
logs why, and carries on with the rest of the batch. Use it in place of
dramatiq's::

    DRAMATIQ_BROKER = {
        "BROKER": "offchat_notify.brokers.RedisBroker",
        "OPTIONS": {"url": "redis://127.0.0.1:6379/0?socket_connect_timeout=1&socket_timeout=1"},
        "MIDDLEWARE": [...],
    }

RabbitMQ needs nothing of the kind: dramatiq's RabbitMQ consumer rejects an
undecodable message, and RabbitMQ dead-letters it to ``<queue>.XQ``.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker as DramatiqRedisBroker
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.errors import ConnectionClosed, DecodeError

__all__ = ["RedisBroker"]

logger = logging.getLogger(__name__)


class RedisBroker(DramatiqRedisBroker):
    """dramatiq's Redis broker, whose consumers dead-letter undecodable messages."""

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _DeadLetteringConsumer


class _DeadLetteringConsumer(_RedisConsumer):
    def __next__(self) -> Any:
        while True:
            try:
                return super().__next__()
            except DecodeError as exc:
                # The undecodable entry is already off the cache; the rest of the
                # batch is still there, so the next round carries on with it.
                try:
                    self.dead_letter_undecodable(exc)
                except redis.ConnectionError as e:
                    raise ConnectionClosed(e) from None

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
