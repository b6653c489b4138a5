"""Fault injection: the Redis broker down, hung, or restarted empty.

Each test runs its own ``redis-server`` on a free loopback port (the shared one
is never stopped), real ``rundramatiq`` workers, and PostgreSQL. The request
side talks to Redis with the documented options, passed in the URL's query
string: ``socket_connect_timeout`` and ``socket_timeout`` bound every wait, and
the pool dramatiq builds from a URL does not retry, so a refused connection
fails at once. (Options given next to ``url`` in DRAMATIQ_BROKER["OPTIONS"] are
ignored by dramatiq; given without a URL, as host/port/..., redis-py 8 applies
its default of 10 retries with backoff: measured 3-5 s per request with the
broker down and about 60 s with it hung.)
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.db import transaction

from offchat_notify import notify_admins, send_bulk_notification
from offchat_notify.models import Event
from offchat_notify.tasks import deliver_event
from tests.helpers import (
    assert_exactly_once,
    bulk_users,
    redis_broker_at,
    relay_until,
    worker_env,
)
from tests.testapp.models import Message

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]

#: The connection options the documentation recommends (in the URL's query string).
RECOMMENDED = {"socket_connect_timeout": 1, "socket_timeout": 1}
#: How long a request may wait when the broker refuses connections (it should not wait at all).
REFUSED_BOUND = 1.0
#: How long a request may wait when the broker accepts connections but never answers:
#: one socket_timeout, plus scheduling noise on a shared machine.
HUNG_BOUND = RECOMMENDED["socket_timeout"] + 1.0


def post_message(sender, text: str) -> tuple[Event, float]:
    """What a chat view does: save a message and notify the admins, in one transaction.

    Returns the Event and the seconds the "request" took, commit and dispatch included.
    """
    started = time.monotonic()
    with transaction.atomic():
        Message.objects.create(sender=sender, text=text)
        event = notify_admins("message.sent", title=text, actor=sender)
    return event, time.monotonic() - started


def delivered(event_ids) -> bool:
    return Event.objects.filter(pk__in=event_ids, state=Event.State.DELIVERED).count() == len(
        event_ids
    )


def states(event_ids) -> dict[str, int]:
    return dict(Counter(Event.objects.filter(pk__in=event_ids).values_list("state", flat=True)))


def test_requests_with_the_broker_down_stay_bounded_and_the_relay_delivers_every_row(
    postgres, redis_server, use_broker, start_worker, make_users, settings
):
    # Given 1,000 admins, a sender, and a broker that is down
    settings.OFFCHAT_NOTIFY = {
        "BACKEND": "dramatiq",
        "OPTIONS": {"ON_BROKER_ERROR": "defer"},
        "RELAY_AFTER": 1,
    }
    url = redis_server.url(**RECOMMENDED)
    use_broker(redis_broker_at(url))
    admins = bulk_users(1000, group="admin")
    (sender,) = make_users(1)
    redis_server.stop()

    # When 50 messages are saved
    events, waits = [], []
    for n in range(50):
        event, wait = post_message(sender, f"message {n}")
        events.append(event.pk)
        waits.append(wait)

    # Then no request failed or waited past the bound, and every Event waits in the database
    print(
        f"\nrequest wait, broker down: max {max(waits) * 1000:.1f} ms, "
        f"mean {sum(waits) / len(waits) * 1000:.1f} ms"
    )
    assert max(waits) < REFUSED_BOUND, [round(w, 3) for w in waits]
    assert states(events) == {"pending": 50}

    # When the broker comes back (empty), a worker runs, and the relay runs every second
    redis_server.start()
    back = time.monotonic()
    worker = start_worker("redis", env=worker_env(redis_url=url))
    took = relay_until(
        lambda: delivered(events),
        timeout=120,
        what="50 events to be delivered after the broker returned",
        on_fail=lambda: f"States: {states(events)}\nWorker output:\n{worker.output()}",
    )

    # Then 50,000 rows, each exactly once
    print(
        f"50,000 rows delivered {time.monotonic() - back:.1f} s after the broker returned "
        f"(relay loop: {took:.1f} s)"
    )
    assert_exactly_once(events, admins)


def test_a_hung_broker_holds_a_request_no_longer_than_the_socket_timeout(
    postgres, redis_server, use_broker, start_worker, make_users, settings
):
    # Given a broker that accepts connections but never answers (SIGSTOP)
    settings.OFFCHAT_NOTIFY = {
        "BACKEND": "dramatiq",
        "OPTIONS": {"ON_BROKER_ERROR": "defer"},
        "RELAY_AFTER": 1,
    }
    url = redis_server.url(**RECOMMENDED)
    use_broker(redis_broker_at(url))
    admins = bulk_users(20, group="admin")
    (sender,) = make_users(1)
    post_message(sender, "warm up")  # a pooled connection exists, as in a running site
    redis_server.freeze()
    try:
        # When messages are saved
        results = [post_message(sender, f"hung {n}") for n in range(3)]
    finally:
        redis_server.thaw()
    waits = [wait for _, wait in results]
    print(f"\nrequest wait, broker hung: {[round(w, 3) for w in waits]} s")
    # Then each request waited at most about one socket timeout, and nothing failed
    assert max(waits) < HUNG_BOUND, waits
    events = [event.pk for event, _ in results]
    assert states(events) == {"pending": 3}
    # And once the broker answers again, the relay delivers them
    worker = start_worker("redis", env=worker_env(redis_url=url))
    relay_until(
        lambda: delivered(events),
        timeout=60,
        what="the deferred events to be delivered",
        on_fail=lambda: f"States: {states(events)}\nWorker output:\n{worker.output()}",
    )
    assert_exactly_once(events, admins)


def test_redis_restarted_empty_with_events_queued_delivers_everything_once(
    postgres, redis_server, use_broker, start_worker, settings
):
    # Given a worker busy with a large fan-out, and 20 more Events queued behind it
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", "RELAY_AFTER": 2}
    url = redis_server.url(**RECOMMENDED)
    broker = use_broker(redis_broker_at(url))
    admins = bulk_users(30_000, group="admin")
    members = bulk_users(500, group="member")
    # Pages of 50 rows: 600 statements keep the fan-out busy past the restart.
    env = worker_env(redis_url=url, PAGE_SIZE=50)
    worker = start_worker("redis", env=env, threads=1).wait_ready()
    big = notify_admins("big", title="30,000 recipients").pk
    queued = [
        send_bulk_notification("queued", role="member", title=f"queued {n}").pk for n in range(20)
    ]
    events = [big, *queued]

    # When Redis restarts empty while the Events are still queued
    time.sleep(0.5)
    assert not delivered([big]), "the large fan-out finished too soon; nothing was tested"
    redis_server.restart()
    assert broker.do_qsize(deliver_event.queue_name) == 0

    # Then the relay sends what Redis lost, and every Event is delivered exactly once
    relayed: list[int] = []
    took = relay_until(
        lambda: delivered(events),
        timeout=120,
        what="every event to be delivered after Redis restarted empty",
        on_fail=lambda: f"States: {states(events)}\nWorker output:\n{worker.output()}",
        relayed=relayed,
    )
    print(
        f"\nall 21 events delivered {took:.1f} s after Redis restarted empty "
        f"({len(set(relayed))} sent again by the relay)"
    )
    assert set(relayed) & set(queued), "no queued Event was lost; nothing was tested"
    assert_exactly_once([big], admins)
    assert_exactly_once(queued, members)
