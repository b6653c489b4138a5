"""Retention: old read notifications and finished Events go, in batches; nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from offchat_notify import Audience
from offchat_notify.models import Event, Notification
from offchat_notify.retention import purge, purge_orphans
from offchat_notify.schedule.runs import run_job
from offchat_notify.scheduler import get_jobs

pytestmark = pytest.mark.django_db


def event(users, *, days: float, state=Event.State.DELIVERED, read=(), unread=()) -> Event:
    """An Event ``days`` old, with notifications as old, read or unread."""
    ev = Event.objects.create(verb="x", audience=Audience.users(users).spec, state=state)
    then = timezone.now() - timedelta(days=days)
    Event.objects.filter(pk=ev.pk).update(created_at=then)
    for user in read:
        Notification.objects.create(event=ev, recipient=user, read_at=then)
    for user in unread:
        Notification.objects.create(event=ev, recipient=user)
    Notification.objects.filter(event=ev).update(created_at=then)
    return ev


def remaining(ev: Event) -> tuple[bool, list[int]]:
    rows = Notification.objects.filter(event=ev).order_by("recipient_id")
    return Event.objects.filter(pk=ev.pk).exists(), list(
        rows.values_list("recipient_id", flat=True)
    )


def test_purge_deletes_old_read_rows_then_events_with_nothing_unread(make_users):
    a, b = make_users(2)
    all_read = event([a, b], days=40, read=[a, b])
    half_read = event([a, b], days=40, read=[a], unread=[b])
    recent = event([a, b], days=10, read=[a, b])
    failed = event([a], days=40, state=Event.State.FAILED)
    pending = event([a], days=40, state=Event.State.PENDING)
    empty = event([a], days=40)  # delivered to nobody
    assert purge(days=30) == (3, 2)
    assert remaining(all_read) == (False, [])
    assert remaining(half_read) == (True, [b.pk])  # the unread row keeps its Event
    assert remaining(recent) == (True, [a.pk, b.pk])
    assert remaining(failed) == (True, [])  # not finished: the relay or an admin decides
    assert remaining(pending) == (True, [])
    assert remaining(empty) == (False, [])
    assert purge(days=30) == (0, 0)


def test_purge_works_in_batches(make_users):
    users = make_users(7)
    events = [event(users, days=40, read=users) for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        assert purge(days=30, batch=4) == (21, 3)
    assert not Event.objects.filter(pk__in=[e.pk for e in events]).exists()
    # 21 rows: six batches and an empty look; 3 events: one batch and an empty
    # look; orphans: an empty look.
    assert sum("LIMIT 4" in q["sql"] for q in queries.captured_queries) == 7 + 2 + 1


def test_purge_reads_retention_days_and_does_nothing_without_it(make_users):
    (a,) = make_users(1)
    old = event([a], days=8, read=[a])
    assert purge() == (0, 0)  # RETENTION_DAYS is None: keep everything
    assert remaining(old) == (True, [a.pk])
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "RETENTION_DAYS": 7}):
        assert "retention" in get_jobs()
        assert run_job("retention") == (1, 1)
    assert remaining(old) == (False, [])


def test_deleting_a_user_or_event_through_the_orm_deletes_their_notifications(make_users):
    a, b = make_users(2)
    kept = event([a, b], days=1, unread=[a, b])
    gone = event([a, b], days=1, unread=[a, b])
    a.delete()
    gone.delete()
    assert remaining(kept) == (True, [b.pk])
    assert not Notification.objects.filter(event_id=gone.pk).exists()


def test_purge_orphans_deletes_rows_whose_user_or_event_was_deleted_behind_the_orm(
    make_users,
):
    a, b, c = make_users(3)
    ev = event([a, b, c], days=1, unread=[a, b, c])
    other = event([b, c], days=1, read=[b, c])
    # Raw deletes: no cascade, and no database constraint to refuse them.
    type(a).objects.filter(pk=a.pk)._raw_delete(using="default")
    Event.objects.filter(pk=other.pk)._raw_delete(using="default")
    assert Notification.objects.count() == 5  # the orphans are still there
    assert purge_orphans(batch=1) == 3  # a's row, and both rows of the deleted Event
    assert remaining(ev) == (True, [b.pk, c.pk])
    assert Notification.objects.count() == 2
    assert purge_orphans() == 0


def test_purge_counts_orphans_with_the_notifications_it_deletes(make_users):
    a, b = make_users(2)
    event([a, b], days=1, unread=[a, b])
    type(a).objects.filter(pk=a.pk)._raw_delete(using="default")
    assert purge(days=30) == (1, 0)
