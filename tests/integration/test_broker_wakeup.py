"""The library's Redis broker wakes an idle consumer with a token instead of letting it poll.

Consumer-level tests on a throwaway redis-server: what enqueue writes, that an
idle consumer waits in ``BLPOP`` and wakes on the token, that a lost token
costs at most one wait, and that the delay queue and a full consumer keep
dramatiq's own backoff. Real workers: test_broker_wakeup_workers.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker as StockRedisBroker
from dramatiq.common import dq_name

from offchat_notify.backends.dramatiq.broker import WAKE_TOKENS, RedisBroker, wake_key
from tests.helpers import wait_for

pytestmark = pytest.mark.redis

QUEUE = "wakeq"


def message(n: int) -> Message:
    return Message(queue_name=QUEUE, actor_name="noop", args=(n,), kwargs={}, options={})


@pytest.fixture
def broker(redis_server: Any) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=redis_server.url(), namespace="wake", middleware=[])
    broker.declare_queue(QUEUE)
    yield broker
    broker.close()


def tokens(broker: RedisBroker, queue: str = QUEUE) -> int:
    return broker.client.llen(wake_key(broker.namespace, queue))


def blocked_in_blpop(broker: RedisBroker) -> int:
    """How many clients of the server wait in BLPOP right now."""
    return sum(1 for c in broker.client.client_list() if c["cmd"] == "blpop" and "b" in c["flags"])


class Waits:
    """Records, for each of the consumer's waits, whether it ended on a wake token."""

    def __init__(self, consumer: Any) -> None:
        self.results: list[bool] = []
        wait_then_fetch = consumer.wait_then_fetch

        def recorded(room: int) -> Any:
            fetched = wait_then_fetch(room)
            self.results.append(consumer.woken)
            return fetched

        consumer.wait_then_fetch = recorded


def next_in_thread(consumer: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(next(consumer)), daemon=True)
    thread.start()
    return thread, out


def test_enqueue_pushes_a_capped_expiring_wake_token_and_a_delayed_one_none(broker):
    broker.enqueue(message(1))
    key = wake_key(broker.namespace, QUEUE)
    assert tokens(broker) == 1
    assert 0 < broker.client.pttl(key) <= 60_000
    # The list is capped: tokens of nobody's waiting cost a few empty fetches at most
    for n in range(WAKE_TOKENS + 10):
        broker.enqueue(message(n))
    assert tokens(broker) == WAKE_TOKENS
    # A delayed message goes to the delay queue, which the worker polls itself
    broker.client.delete(key)
    broker.enqueue(message(2), delay=60_000)
    assert tokens(broker) == 0
    assert tokens(broker, dq_name(QUEUE)) == 0
    # dramatiq's keys are untouched: the messages are where dramatiq puts them
    assert broker.client.llen(f"wake:{QUEUE}") == WAKE_TOKENS + 11
    assert broker.client.llen(f"wake:{dq_name(QUEUE)}") == 1


def test_an_idle_consumer_waits_in_blpop_and_wakes_on_the_token(broker):
    # Given an idle consumer whose wait would last 30 s
    consumer = broker.consume(QUEUE, prefetch=2, timeout=30_000)
    waits = Waits(consumer)
    try:
        thread, out = next_in_thread(consumer)
        wait_for(lambda: blocked_in_blpop(broker) == 1, timeout=10, what="the consumer's BLPOP")
        # When a message is enqueued
        broker.enqueue(message(7))
        # Then the wait ends on the token (long before its 30 s), with the message
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert waits.results == [True]
        assert [m.args for m in out] == [(7,)]
        consumer.ack(out[0])
        assert tokens(broker) == 0
    finally:
        consumer.close()


def test_a_lost_wake_token_costs_one_wait_at_most(broker, redis_server):
    consumer = broker.consume(QUEUE, prefetch=2, timeout=300)
    waits = Waits(consumer)
    try:
        # A token deleted before anyone read it: the consumer fetches before it waits
        broker.enqueue(message(1))
        broker.client.delete(wake_key(broker.namespace, QUEUE))
        first = next(consumer)
        assert first.args == (1,)
        consumer.ack(first)
        assert waits.results == []

        # A message sent with no token at all (by dramatiq's own broker, as a web
        # process configured with it would) while the consumer waits
        thread, out = next_in_thread(consumer)
        wait_for(lambda: blocked_in_blpop(broker) == 1, timeout=10, what="the consumer's BLPOP")
        stock = StockRedisBroker(url=redis_server.url(), namespace="wake", middleware=[])
        stock.enqueue(message(2))
        thread.join(timeout=10)
        # The wait runs to its timeout, and the fetch behind it finds the message
        assert waits.results == [False]
        assert [m.args for m in out] == [(2,)]
        consumer.ack(out[0])
        stock.close()
    finally:
        consumer.close()


def test_a_wait_longer_than_the_urls_socket_timeout_is_not_a_timeout(redis_server):
    # socket_timeout=0.2 in the URL, as the docs recommend (with 1 s), and a 1 s wait
    broker = RedisBroker(url=redis_server.url(socket_timeout=0.2), namespace="wake", middleware=[])
    broker.declare_queue(QUEUE)
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    waits = Waits(consumer)
    try:
        assert next(consumer) is None
        assert waits.results == [False]
        broker.enqueue(message(3))
        assert next(consumer).args == (3,)
    finally:
        consumer.close()
        broker.close()


def test_the_wait_has_a_connection_of_its_own_given_back_on_close(broker):
    pool = broker.client.connection_pool
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    assert next(consumer) is None
    connection = consumer._wake_connection
    assert connection is not None
    assert connection in pool._in_use_connections
    consumer.close()
    assert connection not in pool._in_use_connections
    assert consumer._wake_connection is None


def test_a_full_consumer_and_the_delay_queue_keep_dramatiqs_backoff_and_leave_tokens(broker):
    # A consumer holding `prefetch` unacknowledged messages cannot fetch: it
    # sleeps as dramatiq's does, and leaves the token to a consumer that can
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    delayed = broker.consume(dq_name(QUEUE), prefetch=1, timeout=100)
    waits = Waits(consumer)
    try:
        broker.enqueue(message(1))
        held = next(consumer)
        broker.enqueue(message(2))
        assert next(consumer) is None
        assert waits.results == []
        assert tokens(broker) == 2  # one per enqueue; none taken
        # The delay queue's consumer never waits on a token
        assert delayed.wake_key is None
        assert next(delayed) is None
        consumer.ack(held)
    finally:
        consumer.close()
        delayed.close()


def test_requeue_on_shutdown_wakes_consumers_for_the_messages_put_back(broker):
    consumer = broker.consume(QUEUE, prefetch=3, timeout=100)
    try:
        for n in range(3):
            broker.enqueue(message(n))
        broker.client.delete(wake_key(broker.namespace, QUEUE))
        fetched = [next(consumer) for _ in range(3)]
        consumer.requeue(fetched)
        assert tokens(broker) == 3
        assert broker.client.llen(f"wake:{QUEUE}") == 3
    finally:
        consumer.close()
