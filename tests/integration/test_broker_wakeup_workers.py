"""Real ``rundramatiq`` workers on the library's Redis broker: woken at once, nothing lost.

An idle worker on dramatiq's own RedisBroker polls, sleeping up to the worker
timeout (1 s); on the library's it waits in ``BLPOP`` for the token each
enqueue pushes. Compared in one test, each worker started plainly. Then the
semantics that must not change: delayed messages run once, after their delay;
a message without a token (sent through dramatiq's broker) is still delivered;
two workers share fifty messages, each processed once.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker as StockRedisBroker

from offchat_notify import Audience, notify_admins
from offchat_notify.models import Event
from offchat_notify.tasks import deliver_event
from tests.helpers import (
    assert_exactly_once,
    broker_middleware,
    bulk_users,
    redis_broker_at,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]

#: Idle gaps before each timed message: long enough for dramatiq's backoff to reach its cap.
GAPS = [1.5 + 0.1 * n for n in range(10)]
STOCK_SETTINGS = "tests.integration.stock_redis_settings"


def stock_broker(url: str) -> StockRedisBroker:
    return StockRedisBroker(
        url=url, namespace=django_settings.REDIS_NAMESPACE, middleware=broker_middleware()
    )


def delivered(event_id: int, worker: Any) -> Event:
    wait_for(
        lambda: Event.objects.filter(pk=event_id, state=Event.State.DELIVERED).exists(),
        timeout=60,
        what=f"event {event_id} to be delivered",
        on_fail=lambda: f"Worker output:\n{worker.output()[-6000:]}",
    )
    return Event.objects.get(pk=event_id)


def start_latency(worker: Any) -> float:
    """Seconds from just before ``notify_admins`` to the worker starting the delivery."""
    before = timezone.now()
    event = delivered(notify_admins("message.sent", title="wake").pk, worker)
    return ((event.started_at or event.delivered_at) - before).total_seconds()


def blpop_waiters(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(1 for c in client.client_list() if c["cmd"] == "blpop" and "b" in c["flags"])
    finally:
        client.close()


def drained(url: str, queue: str) -> bool:
    """No message of ``queue`` left in Redis: none queued, delayed, held or dead-lettered."""
    import redis

    client = redis.Redis.from_url(url)
    ns = django_settings.REDIS_NAMESPACE
    try:
        keys = [f"{ns}:{queue}.msgs", f"{ns}:{queue}.DQ.msgs", f"{ns}:{queue}.XQ.msgs"]
        held = sum(client.scard(k) for k in client.keys(f"{ns}:__acks__.*"))
        return held == 0 and all(client.hlen(k) == 0 for k in keys)
    finally:
        client.close()


def test_an_idle_worker_starts_a_message_at_once_where_dramatiqs_broker_polls(
    postgres, private_queue, redis_server, use_broker, start_worker, settings
):
    # Given admins, and a worker on each broker in turn, started plainly
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    bulk_users(2, group="admin")
    url = redis_server.url()
    env = worker_env(redis_url=url, BACKEND="dramatiq", OPTIONS={"QUEUE": private_queue})
    latencies: dict[str, list[float]] = {}
    waiters: dict[str, int] = {}
    for name, broker, extra in [
        ("ours", redis_broker_at(url), {}),
        ("dramatiq", stock_broker(url), {"DJANGO_SETTINGS_MODULE": STOCK_SETTINGS}),
    ]:
        use_broker(broker)
        worker = start_worker("redis", env={**env, **extra}, threads=4).wait_ready()
        start_latency(worker)  # the first delivery opens the worker's connections
        # When messages are sent after idle gaps of 1.5-2.4 s
        latencies[name] = []
        for gap in GAPS:
            time.sleep(gap)
            waiters[name] = blpop_waiters(url)
            latencies[name].append(start_latency(worker))
        worker.stop()

    # Then the idle worker on the library's broker waited in BLPOP, dramatiq's did not
    assert waiters["ours"] >= 1
    assert waiters["dramatiq"] == 0
    # And it started the messages far sooner: the median under a third of dramatiq's
    ours, stock = (statistics.median(latencies[k]) for k in ("ours", "dramatiq"))
    report = {k: [round(v * 1000, 1) for v in vs] for k, vs in latencies.items()}
    assert ours < stock / 3, f"start latencies, ms: {report}"


def test_delayed_messages_run_once_and_a_message_without_wake_token_is_delivered(
    postgres, private_queue, redis_server, use_broker, start_worker, settings
):
    # Given admins, Events left pending, and a worker on the library's broker
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    bulk_users(2, group="admin")
    url = redis_server.url()
    use_broker(redis_broker_at(url))
    env = worker_env(redis_url=url, BACKEND="dramatiq", OPTIONS={"QUEUE": private_queue})
    worker = start_worker("redis", env=env).wait_ready()
    later, untold = (
        Event.objects.create(verb="x", audience=Audience.role("admin").spec) for _ in range(2)
    )
    # When one is sent with a delay, and one through dramatiq's broker (no wake token)
    sent = timezone.now()
    deliver_event.send_with_options(args=(later.pk,), delay=1500)
    stock = stock_broker(url)
    stock.enqueue(deliver_event.message(untold.pk))
    stock.close()

    # Then both are delivered, each by one run; the delayed one not before its delay
    later, untold = delivered(later.pk, worker), delivered(untold.pk, worker)
    assert later.started_at >= sent + timedelta(milliseconds=1500)
    wait_for(lambda: drained(url, private_queue), timeout=30, what="the queues to drain")
    time.sleep(1.5)  # a second run would have had time to start
    assert [e.attempts for e in Event.objects.filter(pk__in=[later.pk, untold.pk])] == [1, 1]


def test_two_workers_process_fifty_messages_each_exactly_once(
    postgres, private_queue, redis_server, use_broker, start_worker, settings
):
    # Given admins and two idle workers on the library's broker, waiting for tokens
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    admins = bulk_users(3, group="admin")
    url = redis_server.url()
    use_broker(redis_broker_at(url))
    env = worker_env(redis_url=url, BACKEND="dramatiq", OPTIONS={"QUEUE": private_queue})
    workers = [start_worker("redis", env=env).wait_ready() for _ in range(2)]
    wait_for(lambda: blpop_waiters(url) >= 2, timeout=30, what="both workers to wait in BLPOP")
    # When fifty Events are sent
    events = [notify_admins("message.sent", title=f"#{n}").pk for n in range(50)]
    # Then each is delivered once: every admin has one row of each, each Event one run
    wait_for(
        lambda: Event.objects.filter(pk__in=events, state=Event.State.DELIVERED).count() == 50,
        timeout=120,
        what="fifty deliveries",
        on_fail=lambda: "\n".join(w.output()[-3000:] for w in workers),
    )
    wait_for(lambda: drained(url, private_queue), timeout=30, what="the queues to drain")
    assert_exactly_once(events, admins)
    attempts = Event.objects.filter(pk__in=events).values_list("attempts", flat=True)
    assert sorted(set(attempts)) == [1]
