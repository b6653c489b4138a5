"""What the broker holds: ready, delayed and dead-lettered messages, and live workers.

dramatiq's brokers do not share an introspection API (RabbitMQ has
``get_queue_message_counts``, Redis has nothing), so this module reads each
broker's own structures: for Redis the keys dramatiq's Lua script maintains,
for RabbitMQ passive queue declarations.
"""

from __future__ import annotations

from typing import Any

from dramatiq.common import dq_name, xq_name

from offchat_notify.backends.base import BrokerStats, QueueStats


def broker_kind(broker: Any) -> str:
    name = type(broker).__name__.lower()
    for kind in ("redis", "rabbitmq", "stub"):
        if kind in name:
            return kind
    return type(broker).__name__


def collect(broker: Any, queues: list[str], *, detail: bool = True) -> BrokerStats:
    """Read the counts of ``queues`` from ``broker``; never raises.

    ``detail=False`` skips what costs more than a few commands (the scan of
    Redis's in-flight sets), for frequent probes such as the health endpoint.
    """
    kind = broker_kind(broker)
    try:
        if kind == "redis":
            return _redis(broker, queues, detail)
        if kind == "rabbitmq":
            return _rabbitmq(broker, queues)
        if kind == "stub":
            return BrokerStats(
                kind,
                True,
                queues=[
                    QueueStats(q, broker.queues[q].qsize(), broker.queues[dq_name(q)].qsize(), 0)
                    for q in queues
                    if q in broker.queues
                ],
            )
        return BrokerStats(kind, True, error="no introspection for this broker")
    except Exception as exc:
        return BrokerStats(kind, False, error=f"{type(exc).__name__}: {exc}")


def _redis(broker: Any, queues: list[str], detail: bool) -> BrokerStats:
    client = broker.client
    ns = broker.namespace
    client.ping()
    stats = BrokerStats("redis", True)
    heartbeats = client.zrangebyscore(
        f"{ns}:__heartbeats__", _now_ms(client) - broker.heartbeat_timeout, "+inf"
    )
    stats.connected = len(heartbeats)
    for q in queues:
        in_flight = None
        if detail:
            in_flight = 0
            for key in client.scan_iter(match=f"{ns}:__acks__.*.{q}", count=500):
                in_flight += client.scard(key)
        stats.queues.append(
            QueueStats(
                q,
                ready=client.llen(f"{ns}:{q}"),
                delayed=client.llen(f"{ns}:{dq_name(q)}"),
                dead=client.zcard(f"{ns}:{xq_name(q)}"),
                in_flight=in_flight,
            )
        )
    return stats


def _rabbitmq(broker: Any, queues: list[str]) -> BrokerStats:
    stats = BrokerStats("rabbitmq", True)
    for q in queues:
        # dramatiq's own call; it declares the queues (as a worker would) when
        # no worker has yet, instead of failing a passive declaration.
        ready, delayed, dead = broker.get_queue_message_counts(q)
        frame = broker.channel.queue_declare(queue=q, passive=True)
        consumers = frame.method.consumer_count
        stats.queues.append(QueueStats(q, ready, delayed, dead, consumers=consumers))
    return stats


def _now_ms(client: Any) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000
