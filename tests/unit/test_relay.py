"""The relay and retries: overdue Events are sent again, and written once."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from offchat_notify import Audience, PermanentDeliveryError, TransientDeliveryError
from offchat_notify.backends.base import BaseBackend
from offchat_notify.delivery import deliver
from offchat_notify.models import Event, Notification
from offchat_notify.relay import relay, retry

pytestmark = pytest.mark.django_db(transaction=True)


def event_for(users, *, state=Event.State.PENDING, age: float = 0, **fields) -> Event:
    event = Event.objects.create(
        verb="x", audience=Audience.users(users).spec, state=state, **fields
    )
    then = timezone.now() - timedelta(seconds=age)
    Event.objects.filter(pk=event.pk).update(created_at=then, updated_at=then)
    return event


def rows(event) -> int:
    return Notification.objects.filter(event=event).count()


def test_the_relay_sends_overdue_events_and_leaves_fresh_ones(make_users):
    users = make_users(3)
    lost = event_for(users, age=120)  # pending past RELAY_AFTER (60 s)
    fresh = event_for(users, age=5)
    stale_queue = event_for(users, state=Event.State.QUEUED, age=120)
    dead_worker = event_for(users, state=Event.State.DELIVERING, age=45)  # past STUCK_AFTER
    busy_worker = event_for(users, state=Event.State.DELIVERING, age=5)
    failed = event_for(users, state=Event.State.FAILED, age=500)
    assert sorted(relay()) == sorted([lost.pk, stale_queue.pk, dead_worker.pk])
    assert [rows(e) for e in (lost, stale_queue, dead_worker)] == [3, 3, 3]
    assert [rows(e) for e in (fresh, busy_worker, failed)] == [0, 0, 0]
    assert relay() == []


def test_a_resent_event_is_written_once(make_users):
    users = make_users(4)
    event = event_for(users, state=Event.State.DELIVERING, age=100, attempts=1)
    Notification.objects.create(event=event, recipient=users[1])  # the dead worker got this far
    relay()
    assert rows(event) == 4
    assert Event.objects.get(pk=event.pk).state == Event.State.DELIVERED


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "tests.unit.test_relay.NullBackend"})
def test_relayed_events_are_marked_queued_so_the_next_pass_skips_them(make_users):
    users = make_users(1)
    event = event_for(users, age=120)
    assert relay() == [event.pk]
    event.refresh_from_db()
    assert event.state == Event.State.QUEUED
    assert relay() == []  # queued just now: not overdue


class NullBackend(BaseBackend):
    """Accepts everything, delivers nothing (a broker with no worker)."""

    def enqueue(self, job, *args):
        pass


class RefusingBackend(NullBackend):
    def enqueue(self, job, *args):
        raise ConnectionError("broker down")


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "tests.unit.test_relay.RefusingBackend"})
def test_a_relay_pass_with_the_broker_down_stops_and_leaves_events_for_later(make_users, caplog):
    users = make_users(1)
    events = [event_for(users, age=120) for _ in range(3)]
    relay()
    assert "the backend refused event" in caplog.text
    assert set(Event.objects.values_list("state", flat=True)) == {Event.State.QUEUED}
    Event.objects.update(updated_at=timezone.now() - timedelta(seconds=120))
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"}):
        assert sorted(relay()) == [e.pk for e in events]
    assert all(rows(e) == 1 for e in events)


@override_settings(
    OFFCHAT_NOTIFY={"BACKEND": "tests.unit.test_relay.NullBackend", "RELAY_BATCH": 10}
)
def test_concurrent_relays_take_disjoint_batches(postgres, make_users):
    users = make_users(1)
    events = [event_for(users, age=120) for _ in range(40)]
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def one_relay():
        barrier.wait()
        try:
            results.append(relay())
        finally:
            connection.close()

    threads = [threading.Thread(target=one_relay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [pk for batch in results for pk in batch]
    assert len(claimed) == len(set(claimed))  # no Event sent by two relays
    assert sorted(claimed) == sorted(e.pk for e in events)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 2})
def test_transient_failures_are_retried_until_attempts_run_out(make_users, monkeypatch):
    users = make_users(2)
    event = event_for(users)

    def flaky(*args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("offchat_notify.delivery._write", flaky)
    with pytest.raises(TransientDeliveryError, match="server closed the connection"):
        deliver(event.pk)
    event.refresh_from_db()
    assert (event.state, event.attempts) == (Event.State.QUEUED, 1)
    with pytest.raises(PermanentDeliveryError):
        deliver(event.pk)
    event.refresh_from_db()
    assert (event.state, event.attempts) == (Event.State.FAILED, 2)
    assert "OperationalError: server closed the connection" in event.last_error
    # retry() gives it fresh attempts, once the cause is gone.
    monkeypatch.undo()
    assert retry([event.pk]) == [event.pk]
    event.refresh_from_db()
    assert (event.state, event.attempts, rows(event)) == (Event.State.DELIVERED, 1, 2)


def test_retry_skips_delivered_and_unknown_events(make_users):
    users = make_users(1)
    done = event_for(users)
    deliver(done.pk)
    assert retry([done.pk, 987654]) == []


def test_notify_relay_command(make_users):
    users = make_users(1)
    event_for(users, age=120)
    out = StringIO()
    call_command("notify_relay", stdout=out)
    assert out.getvalue() == "Sent 1 overdue event(s) again.\n"
    out = StringIO()
    call_command("notify_relay", stdout=out)
    assert out.getvalue() == "No overdue events.\n"


def test_notify_retry_command(make_users):
    users = make_users(2)
    failed = event_for(users, state=Event.State.FAILED, last_error="boom")
    delivered = event_for(users)
    deliver(delivered.pk)
    out = StringIO()
    call_command("notify_retry", "--failed", str(delivered.pk), stdout=out)
    assert out.getvalue().splitlines() == [
        "Sent 1 event(s) for delivery again.",
        f"Skipped (delivered already, or no such event): [{delivered.pk}]",
    ]
    assert rows(failed) == 2
    with pytest.raises(CommandError, match="Name the Events to retry"):
        call_command("notify_retry")
