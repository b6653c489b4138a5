"""Fault injection: poison messages queued ahead of valid ones, on Redis and on RabbitMQ.

Three kinds of poison: bytes that do not decode, a message naming an Event the
database does not hold, and a message whose argument has the wrong type. The
valid messages behind them must all be delivered (no relay runs here), and the
poison must be logged with the reason and dead-lettered: on Redis in the
queue's ``.XQ`` set, on RabbitMQ in the ``.XQ`` queue.

Each test has a queue of its own (``private_queue``), so workers of other test
runs sharing the RabbitMQ server never see its messages.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from offchat_notify import notify_admins
from offchat_notify.models import Event
from offchat_notify.tasks import deliver_event
from tests.helpers import (
    assert_exactly_once,
    bulk_users,
    redis_broker_at,
    wait_for,
    worker_env,
)

UNDECODABLE = b"\x80\x04\x95 not a dramatiq message"
UNKNOWN_EVENT = 987_654_321


class RedisSide:
    broker_name = "redis"
    undecodable_log = "Rejected an undecodable message"

    def __init__(self, server: Any, use_broker: Any, queue: str) -> None:
        self.url = server.url()
        self.queue = queue
        self.broker = use_broker(redis_broker_at(self.url))
        self.client = self.broker.client
        self.ns = self.broker.namespace

    def env(self) -> dict[str, str]:
        return worker_env(redis_url=self.url, BACKEND="dramatiq", OPTIONS={"QUEUE": self.queue})

    def inject_undecodable(self) -> None:
        self.broker.do_enqueue(self.queue, str(uuid.uuid4()), UNDECODABLE)

    def dead_letters(self) -> list[bytes]:
        return list(self.client.hvals(f"{self.ns}:{self.queue}.XQ.msgs"))

    def outstanding(self) -> int:
        """Messages neither acknowledged nor dead-lettered (queued, or held by a worker)."""
        held = sum(self.client.scard(k) for k in self.client.keys(f"{self.ns}:__acks__.*"))
        return self.client.hlen(f"{self.ns}:{self.queue}.msgs") + held


class RabbitmqSide:
    broker_name = "rabbitmq"
    undecodable_log = "Failed to decode message"

    def __init__(self, broker: Any, queue: str) -> None:
        self.queue = queue
        self.broker = broker
        self._dead: list[bytes] = []

    def env(self) -> dict[str, str]:
        return worker_env(BACKEND="dramatiq", OPTIONS={"QUEUE": self.queue})

    def inject_undecodable(self) -> None:
        import pika

        self.broker.channel.basic_publish(
            exchange="",
            routing_key=self.queue,
            body=UNDECODABLE,
            properties=pika.BasicProperties(delivery_mode=2),
        )

    def dead_letters(self) -> list[bytes]:
        while True:
            method, _properties, body = self.broker.channel.basic_get(
                f"{self.queue}.XQ", auto_ack=True
            )
            if method is None:
                return list(self._dead)
            self._dead.append(body)

    def outstanding(self) -> int:
        main, delayed, _dead = self.broker.get_queue_message_counts(self.queue)
        return main + delayed


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def side(request, private_queue, use_broker) -> Any:
    if request.param == "redis":
        return RedisSide(request.getfixturevalue("redis_server"), use_broker, private_queue)
    return RabbitmqSide(request.getfixturevalue("private_rabbitmq"), private_queue)


def decoded(body: bytes) -> Any:
    try:
        return json.loads(body)["args"]
    except ValueError:
        return body


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.slow
def test_poison_ahead_of_valid_messages_is_dead_lettered_and_the_valid_ones_delivered(
    postgres, side, start_worker, settings
):
    # Given admins, and three poison messages queued ahead of ten valid deliveries
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    admins = bulk_users(20, group="admin")
    side.inject_undecodable()
    deliver_event.send(UNKNOWN_EVENT)
    deliver_event.send("12")
    events = [notify_admins("message.sent", title=f"valid {n}").pk for n in range(10)]

    # When a worker consumes the queue (no relay runs)
    worker = start_worker(side.broker_name, env=side.env())

    def settled() -> bool:
        done = Event.objects.filter(pk__in=events, state=Event.State.DELIVERED).count()
        return done == 10 and len(side.dead_letters()) >= 3 and side.outstanding() == 0

    wait_for(
        settled,
        timeout=60,
        what="ten deliveries and three dead letters",
        on_fail=lambda: (
            f"Delivered: {Event.objects.filter(state='delivered').count()}/10; "
            f"dead letters: {side.dead_letters()}; outstanding: {side.outstanding()}\n"
            f"Worker output:\n{worker.output()}"
        ),
    )

    # Then every valid Event is delivered exactly once
    assert_exactly_once(events, admins)
    # And exactly the three poison messages are dead-lettered
    dead = sorted(map(decoded, side.dead_letters()), key=repr)
    assert dead == sorted([UNDECODABLE, [UNKNOWN_EVENT], ["12"]], key=repr)
    # And each rejection is logged with its reason
    output = worker.output()
    assert side.undecodable_log in output, output
    assert f"No Event {UNKNOWN_EVENT} in the database; rejecting the message." in output
    assert "Not a deliver job: it takes one Event id (int), got ['12']" in output


@pytest.mark.redis
def test_the_library_redis_consumer_dead_letters_undecodable_data_and_keeps_its_batch(
    redis_server, caplog
):
    # Given an undecodable message fetched in one batch with two valid ones
    broker = redis_broker_at(redis_server.url())
    broker.declare_queue("q")
    broker.do_enqueue("q", "poison-id", UNDECODABLE)
    for n in (1, 2):
        broker.enqueue(deliver_event.message(n).copy(queue_name="q"))
    consumer = broker.consume("q", prefetch=3, timeout=100)
    try:
        # When the consumer goes through the batch
        received = [next(consumer) for _ in range(2)]
        # Then it hands over both valid messages, and the poison is in the dead-letter set
        assert [m.args for m in received] == [(1,), (2,)]
        dead = broker.client.hgetall(f"{broker.namespace}:q.XQ.msgs")
        assert dead == {b"poison-id": UNDECODABLE}
        assert "Rejected an undecodable message on queue 'q'" in caplog.text
    finally:
        consumer.close()
        broker.close()
