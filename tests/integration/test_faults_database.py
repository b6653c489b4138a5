"""Fault injection on the database side: a killed connection, and racing deliveries.

No relay runs in these tests: what recovers is the delivery itself (dramatiq's
retry of a transient failure) and the unique (event, recipient) constraint.
"""

from __future__ import annotations

import pytest
from django.db import connection

from offchat_notify import notify_admins
from offchat_notify.models import Event, Notification
from offchat_notify.tasks import deliver_event
from tests.helpers import (
    assert_exactly_once,
    bulk_users,
    redis_broker_at,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]


def rows(event_id: int) -> int:
    return Notification.objects.filter(event_id=event_id).count()


def terminate_backends(application_name: str) -> list[int]:
    """pg_terminate_backend() every connection of the workers named ``application_name``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database() "
            "AND pid <> pg_backend_pid()",
            [application_name],
        )
        return [pid for pid, terminated in cursor.fetchall() if terminated]


def worker_backends(application_name: str) -> list[tuple[int, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, left(query, 60) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            [application_name],
        )
        return list(cursor.fetchall())


def wait_delivered(event_id: int, worker, timeout: float) -> Event:
    wait_for(
        lambda: Event.objects.filter(pk=event_id, state=Event.State.DELIVERED).exists(),
        timeout=timeout,
        what=f"event {event_id} to be delivered",
        on_fail=lambda: (
            f"Event: {Event.objects.filter(pk=event_id).values().first()}\n"
            f"Worker output:\n{worker.output()}"
        ),
    )
    return Event.objects.get(pk=event_id)


#: What a worker's log says when pg_terminate_backend() ended its connection.
KILLED = (
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
)


@pytest.mark.parametrize("parallel_chunk", [None, 20_000], ids=["one-job", "chunk-jobs"])
def test_a_database_connection_killed_mid_fanout_resumes_and_completes(
    postgres, redis_server, use_broker, start_worker, settings, parallel_chunk
):
    # Given 50,000 admins and a worker fanning out one Event to them (in one job,
    # or in three chunk jobs)
    # Pages of 1,000 rows, so that the kill lands between two of them.
    notify_settings = {"BACKEND": "dramatiq", "PARALLEL_CHUNK": parallel_chunk, "PAGE_SIZE": 1000}
    settings.OFFCHAT_NOTIFY = notify_settings
    url = redis_server.url()
    use_broker(redis_broker_at(url))
    admins = bulk_users(50_000, group="admin")
    name = "offchat-worker-pgkill"
    worker = start_worker(
        "redis", env=worker_env(redis_url=url, **notify_settings), application_name=name
    ).wait_ready()
    event_id = notify_admins("message.sent", title="50,000 admins").pk
    wait_for(
        lambda: rows(event_id) >= 10_000,
        timeout=60,
        what="the fan-out to reach 10,000 rows",
        on_fail=worker.output,
    )

    # When PostgreSQL terminates the worker's connections in the middle of it
    backends = worker_backends(name)
    killed = terminate_backends(name)
    at_kill = rows(event_id)
    assert killed, f"no connection of the worker found in pg_stat_activity: {backends}"
    assert at_kill < 50_000, "the fan-out finished before the kill; nothing was tested"

    # Then the delivery is retried on a new connection, resumes, and completes
    event = wait_delivered(event_id, worker, timeout=120)
    output = worker.output()
    print(f"\nterminated backends {killed} at {at_kill} rows; attempts={event.attempts}")
    # How the worker hears of it depends on whether the kill caught it inside a
    # statement (the server's notice) or between two (the socket closed).
    assert any(said in output for said in KILLED), output
    assert "Retrying message" in output, output
    assert event.recipient_count == 50_000
    assert_exactly_once([event_id], admins)


def test_a_persistent_connection_killed_between_messages_does_not_lose_the_next_one(
    postgres, redis_server, use_broker, start_worker, settings
):
    # Given a worker with persistent database connections (CONN_MAX_AGE), warmed up
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    url = redis_server.url()
    use_broker(redis_broker_at(url))
    admins = bulk_users(100, group="admin")
    name = "offchat-worker-idlekill"
    worker = start_worker(
        "redis",
        env={**worker_env(redis_url=url), "TEST_CONN_MAX_AGE": "none"},
        application_name=name,
        threads=1,
    ).wait_ready()
    wait_delivered(notify_admins("warm-up").pk, worker, timeout=60)

    # When PostgreSQL terminates its idle connection
    assert terminate_backends(name), worker_backends(name)

    # Then the next Event is still delivered, by a retry (no relay runs here)
    event = wait_delivered(notify_admins("after the kill").pk, worker, timeout=60)
    assert "Could not claim event" in worker.output()
    assert event.attempts == 1  # the failed claim did not count against the Event
    assert_exactly_once([event.pk], admins)


def test_five_concurrent_deliveries_of_one_event_write_each_row_once(
    postgres, redis_server, use_broker, start_worker, settings
):
    # Given an Event for 20,000 admins, and five messages for it in the queue
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    url = redis_server.url()
    broker = use_broker(redis_broker_at(url))
    admins = bulk_users(20_000, group="admin")
    event_id = notify_admins("message.sent", title="five at once").pk
    for _ in range(4):
        deliver_event.send(event_id)

    # When a worker with five threads takes them all at once
    worker = start_worker("redis", env=worker_env(redis_url=url), threads=5)

    # Then the Event is delivered, its rows written exactly once
    wait_delivered(event_id, worker, timeout=120)
    wait_for(
        lambda: broker.do_qsize(deliver_event.queue_name) == 0,
        timeout=60,
        what="all five messages to be processed",
        on_fail=worker.output,
    )
    event = Event.objects.get(pk=event_id)
    print(f"\nfive concurrent deliveries: attempts={event.attempts}")
    assert event.attempts >= 2, "the deliveries did not overlap; nothing was tested"
    assert event.recipient_count == 20_000
    assert_exactly_once([event_id], admins)
