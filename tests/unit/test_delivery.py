"""deliver(): idempotent, resumable, honest about what happened."""

from __future__ import annotations

import pytest
from django.db.models import Count

from offchat_notify import Audience
from offchat_notify.delivery import deliver
from offchat_notify.models import Event, Notification

pytestmark = pytest.mark.django_db


def make_event(audience: Audience, **fields) -> Event:
    return Event.objects.create(verb="x", audience=audience.spec, **fields)


def duplicates() -> int:
    return (
        Notification.objects.values("event", "recipient")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )


def test_delivering_twice_writes_each_row_once(make_users):
    users = make_users(7, group="admin")
    event = make_event(Audience.role("admin"))
    deliver(event.pk)
    again = deliver(event.pk)
    assert again.state == Event.State.DELIVERED
    assert again.attempts == 1  # the second call saw it delivered and did nothing
    assert Notification.objects.filter(event=event).count() == len(users)
    assert duplicates() == 0


def test_a_delivery_interrupted_half_way_completes_without_duplicates(make_users):
    users = make_users(10, group="admin")
    event = make_event(Audience.role("admin"), state=Event.State.DELIVERING, attempts=1)
    Notification.objects.bulk_create([Notification(event=event, recipient=u) for u in users[:4]])
    event = deliver(event.pk)
    assert event.attempts == 2
    assert event.recipient_count == 10
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == [
        u.pk for u in users
    ]
    assert duplicates() == 0


def test_delivery_records_counts_and_timings(make_users):
    users = make_users(3)
    event = make_event(Audience.users([*users, users[-1].pk + 500]))
    event = deliver(event.pk)
    assert (event.state, event.recipient_count, event.skipped_count) == ("delivered", 3, 1)
    assert event.delivered_at >= event.started_at >= event.created_at
    assert event.duration_ms is not None
    assert event.last_error == ""


def test_an_event_that_does_not_exist_is_dropped_with_a_warning(caplog):
    assert deliver(987654321) is None
    assert "Event 987654321 does not exist" in caplog.text


def test_a_failed_delivery_is_recorded_and_raised():
    event = make_event(Audience.role("admin"))
    Event.objects.filter(pk=event.pk).update(audience={"role": 5})
    with pytest.raises(Exception, match="Malformed audience spec"):
        deliver(event.pk)
    event.refresh_from_db()
    assert event.state == Event.State.FAILED
    assert event.last_error.startswith("offchat_notify.exceptions.InvalidNotification")


def test_a_role_emptied_before_delivery_delivers_to_nobody(make_users):
    from django.contrib.auth.models import Group

    make_users(3, group="admin")
    event = make_event(Audience.role("admin"))
    Group.objects.get(name="admin").user_set.clear()
    event = deliver(event.pk)
    assert (event.state, event.recipient_count) == ("delivered", 0)


def test_a_connection_failure_before_the_claim_is_transient_and_counts_no_attempt(
    monkeypatch, caplog
):
    from django.db import OperationalError

    from offchat_notify import TransientDeliveryError

    event = make_event(Audience.role("admin"))

    def dead_connection(event_id):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("offchat_notify.delivery.claim", dead_connection)
    with pytest.raises(TransientDeliveryError, match="terminating connection"):
        deliver(event.pk)
    assert "Could not claim event" in caplog.text
    event.refresh_from_db()
    assert (event.state, event.attempts) == (Event.State.PENDING, 0)
