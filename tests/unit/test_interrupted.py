"""An interrupted delivery is bounded and recorded (issue #12, item 1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from dramatiq.middleware.time_limit import TimeLimitExceeded

from offchat_notify import Audience, PermanentDeliveryError
from offchat_notify.delivery import deliver
from offchat_notify.delivery.claim import claim as _claim
from offchat_notify.models import Event, Notification
from offchat_notify.relay import relay

pytestmark = pytest.mark.django_db


def left_delivering(event: Event) -> None:
    """What a worker killed mid-delivery leaves: delivering, heartbeat long stale."""
    Event.objects.filter(pk=event.pk).update(
        state=Event.State.DELIVERING, updated_at=timezone.now() - timedelta(minutes=5)
    )


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 3})
def test_a_time_limit_is_recorded_before_it_propagates(make_users, monkeypatch):
    users = make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)

    def too_slow(*args, **kwargs):
        raise TimeLimitExceeded()

    monkeypatch.setattr("offchat_notify.delivery._write", too_slow)
    with pytest.raises(TimeLimitExceeded):
        deliver(event.pk)
    event.refresh_from_db()
    assert (event.state, event.failures) == (Event.State.QUEUED, 1)
    assert "TimeLimitExceeded" in event.last_error


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 3, "STUCK_AFTER": 1})
def test_an_event_left_delivering_again_and_again_fails_at_max_attempts(make_users):
    users = make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)

    # Given a delivery that never finishes: each attempt's worker is killed, and
    # the message is redelivered by the broker (no relay in between)
    for attempt in range(1, 3):
        left_delivering(event)
        _claim(event.pk)  # the attempt starts, then its worker dies: nothing else runs
        event.refresh_from_db()
        assert (event.state, event.failures) == (Event.State.DELIVERING, attempt)
    # Then the next claim of an Event left delivering gives up, delivering nothing
    left_delivering(event)
    with pytest.raises(PermanentDeliveryError, match="interrupted"):
        deliver(event.pk)
    event.refresh_from_db()
    assert event.state == Event.State.FAILED
    assert not Notification.objects.filter(event=event).exists()
    # And the relay no longer sends it
    assert event.pk not in relay()


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 3, "STUCK_AFTER": 1})
def test_a_relay_pass_over_a_stuck_event_counts_one_failure_and_delivers(make_users):
    users = make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)
    left_delivering(event)
    assert relay() == [event.pk]
    event.refresh_from_db()
    assert (event.state, event.failures) == (Event.State.DELIVERED, 1)
    assert Notification.objects.filter(event=event).count() == 2


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 3})
def test_a_delivery_running_now_is_not_counted_as_interrupted(make_users):
    users = make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)
    Event.objects.filter(pk=event.pk).update(state=Event.State.DELIVERING)  # fresh heartbeat
    deliver(event.pk)
    event.refresh_from_db()
    assert (event.state, event.failures) == (Event.State.DELIVERED, 0)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 3, "STUCK_AFTER": 1})
def test_relay_passes_over_an_event_that_never_finishes_end_at_max_attempts(make_users):
    users = make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)
    null = {"BACKEND": "tests.unit.test_relay.NullBackend", "MAX_ATTEMPTS": 3, "STUCK_AFTER": 1}
    with override_settings(OFFCHAT_NOTIFY=null):
        for _ in range(5):  # each pass sends it; its worker dies before finishing
            left_delivering(event)
            relay()
            if Event.objects.get(pk=event.pk).state == Event.State.FAILED:
                break
    event.refresh_from_db()
    assert (event.state, event.failures) == (Event.State.FAILED, 3)
    assert "interrupted" in event.last_error


CHUNKED = {"BACKEND": "sync", "PARALLEL_CHUNK": 10, "PAGE_SIZE": 4, "MAX_ATTEMPTS": 3}


@override_settings(OFFCHAT_NOTIFY=CHUNKED)
def test_an_event_waiting_for_its_chunk_jobs_is_not_counted_as_interrupted(make_users):
    from offchat_notify.delivery import chunking
    from offchat_notify.roles import get_role_resolver

    make_users(25, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    chunking.plan(event, event.audience, get_role_resolver())  # chunks recorded, jobs queued
    left_delivering(event)  # no heartbeat while the chunk jobs wait in a long queue
    relay()
    relay()
    event.refresh_from_db()
    assert event.failures == 0


@override_settings(OFFCHAT_NOTIFY=CHUNKED)
def test_a_chunk_started_max_attempts_times_without_finishing_fails_its_event(make_users):
    from offchat_notify.delivery import deliver_chunk
    from offchat_notify.models import DeliveryChunk

    make_users(25, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    from offchat_notify.delivery import chunking
    from offchat_notify.roles import get_role_resolver

    chunking.plan(event, event.audience, get_role_resolver())
    DeliveryChunk.objects.filter(event=event, index=1).update(attempts=3)  # three killed runs
    with pytest.raises(PermanentDeliveryError, match="chunk 1 was started 3 times"):
        deliver_chunk(event.pk, 1)
    event.refresh_from_db()
    assert event.state == Event.State.FAILED
