"""End to end: PostgreSQL, a real broker, and a real ``manage.py rundramatiq`` worker."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from offchat_notify import Audience, notify, notify_admins, send_bulk_notification
from offchat_notify.models import Event, Notification
from tests.helpers import wait_for
from tests.testapp.models import Message

pytestmark = [pytest.mark.postgres, pytest.mark.worker]


def wait_delivered(event: Event, worker, timeout: float = 60) -> Event:
    wait_for(
        lambda: Event.objects.filter(pk=event.pk, state=Event.State.DELIVERED).exists(),
        timeout=timeout,
        what=f"event {event.pk} to be delivered",
        on_fail=lambda: (
            f"Event: {Event.objects.filter(pk=event.pk).values().first()}\n"
            f"Worker output:\n{worker.output()}"
        ),
    )
    return Event.objects.get(pk=event.pk)


def rows(event: Event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


@pytest.mark.redis
def test_a_worker_on_redis_delivers_to_every_admin_once(
    postgres, redis_broker, start_worker, make_users, settings
):
    # Given 300 admins, a sender, and a worker on Redis
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", "PAGE_SIZE": 100}
    admins = make_users(300, group="admin")
    (sender,) = make_users(1, group="admin")
    worker = start_worker("redis")
    # When the sender posts a message
    message = Message.objects.create(sender=sender, text="hello")
    event = notify(
        Audience.role("admin").exclude(sender),
        "message.sent",
        title="New message",
        actor=sender,
        target=message,
    )
    # Then the worker writes one row per admin but the sender
    event = wait_delivered(event, worker)
    assert rows(event) == [u.pk for u in admins]
    assert event.recipient_count == 300
    assert event.attempts == 1


@pytest.mark.parametrize(
    "broker",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ],
)
def test_background_dispatch_sends_from_its_thread_to_a_real_broker(
    broker, request, postgres, start_worker, make_users, settings
):
    # Given DISPATCH "background" and a worker on a real broker
    request.getfixturevalue(f"{broker}_broker")
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", "OPTIONS": {"DISPATCH": "background"}}
    admins = make_users(50, group="admin")
    worker = start_worker(broker)
    # When several threads notify at once (the sender thread serves them all)
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def post(i: int) -> int:
        try:
            return notify_admins("message.sent", title=f"#{i}").pk
        finally:
            connections.close_all()

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(post, range(12)))
    # Then every Event is delivered, each to every admin once
    for event_id in ids:
        event = wait_delivered(Event.objects.get(pk=event_id), worker)
        assert rows(event) == [u.pk for u in admins]
        assert event.attempts == 1, worker.output()[-6000:]


@pytest.mark.rabbitmq
def test_a_worker_on_rabbitmq_delivers(
    postgres, rabbitmq_broker, start_worker, make_users, settings
):
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    admins = make_users(120, group="admin")
    worker = start_worker("rabbitmq")
    event = notify_admins("message.sent", title="hi")
    event = wait_delivered(event, worker)
    assert rows(event) == [u.pk for u in admins]


@pytest.mark.redis
def test_the_same_calls_give_the_same_rows_under_every_backend(
    postgres, redis_broker, start_worker, make_users, settings
):
    # Given a custom user model with admins, members and an inactive admin
    admins = make_users(40, group="admin")
    make_users(2, group="admin", is_active=False)
    members = make_users(25, group="member")
    missing = members[-1].pk + 10_000
    worker = start_worker("redis")

    def run(backend: str) -> dict[str, list[int]]:
        settings.OFFCHAT_NOTIFY = {"BACKEND": backend, "PAGE_SIZE": 16}
        events = {
            "admins": notify_admins("message.sent", title=backend),
            "ids": send_bulk_notification(
                "digest", user_ids=[*members[:10], missing], title=backend
            ),
            "role": send_bulk_notification("flagged", role="member", title=backend),
        }
        result = {}
        for name, event in events.items():
            event = wait_delivered(event, worker)
            result[name] = rows(event)
            result[f"{name}.skipped"] = [event.skipped_count]
        return result

    # When the same calls run under each backend
    outcomes = {backend: run(backend) for backend in ("sync", "eager", "dramatiq")}
    # Then every backend wrote exactly the same rows
    assert outcomes["sync"] == outcomes["eager"] == outcomes["dramatiq"]
    assert outcomes["sync"]["admins"] == [u.pk for u in admins]
    assert outcomes["sync"]["ids"] == [u.pk for u in members[:10]]
    assert outcomes["sync"]["ids.skipped"] == [1]
    assert outcomes["sync"]["role"] == [u.pk for u in members]
    assert Event.objects.count() == 9
    assert Group.objects.get(name="admin").user_set.count() == 42


@pytest.mark.redis
def test_a_large_event_is_shared_by_two_workers_in_chunks(
    postgres, redis_broker, start_worker, make_users, settings
):
    # Given 2,000 admins and chunks of 250: eight chunk jobs for two workers
    chunked = {"BACKEND": "dramatiq", "PARALLEL_CHUNK": 250, "PAGE_SIZE": 100}
    settings.OFFCHAT_NOTIFY = chunked
    admins = make_users(2000, group="admin")
    env = {"TEST_OFFCHAT_NOTIFY": json.dumps(chunked)}
    workers = [start_worker("redis", env=env), start_worker("redis", env=env)]
    # When
    event = notify_admins("message.sent")
    # Then
    event = wait_delivered(event, workers[0])
    assert rows(event) == [u.pk for u in admins]
    assert event.chunks.filter(done_at__isnull=False).count() == 8
