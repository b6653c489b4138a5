"""fanout.PageWriter: plain inserts until a conflict, then ON CONFLICT; a throttled heartbeat."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from offchat_notify import Audience
from offchat_notify.delivery.writer import write_range
from offchat_notify.models import Event, Notification
from offchat_notify.roles import GroupRoles

pytestmark = pytest.mark.django_db


def inserts(queries) -> list[bool]:
    """For each Notification INSERT run, whether it ignored conflicts."""
    table = re.compile(rf'INSERT (OR IGNORE )?INTO "{Notification._meta.db_table}"')
    return [
        "ON CONFLICT" in q["sql"] or "OR IGNORE" in q["sql"]
        for q in queries.captured_queries
        if table.search(q["sql"])
    ]


def write(event: Event, page_size: int, stuck_after: float = 15) -> int:
    return write_range(
        event.pk, event.audience, GroupRoles(), page_size=page_size, stuck_after=stuck_after
    ).added


def recipients(event: Event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


def test_a_first_delivery_writes_plain_inserts(make_users):
    users = make_users(9, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    with CaptureQueriesContext(connection) as queries:
        assert write(event, page_size=4) == 9
    assert inserts(queries) == [False, False, False]
    assert recipients(event) == [u.pk for u in users]


def test_a_page_that_meets_written_rows_is_redone_ignoring_conflicts_and_so_are_later_ones(
    make_users,
):
    users = make_users(11, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    # A crashed earlier attempt wrote the first page and part of the second.
    Notification.objects.bulk_create([Notification(event=event, recipient=u) for u in users[:6]])
    with CaptureQueriesContext(connection) as queries:
        assert write(event, page_size=4) == 5
    # Page 1 fails plainly and is redone; pages 2 and 3 ignore conflicts from the start.
    assert inserts(queries) == [False, True, True, True]
    assert recipients(event) == [u.pk for u in users]


def test_a_conflict_inside_the_callers_transaction_does_not_break_it(make_users):
    users = make_users(5, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    Notification.objects.create(event=event, recipient=users[2])
    with transaction.atomic():
        assert write(event, page_size=10) == 4
        assert Notification.objects.filter(event=event).count() == 5  # still usable
    assert recipients(event) == [u.pk for u in users]


def heartbeats(queries) -> int:
    table = Event._meta.db_table
    return sum(
        q["sql"].startswith(f'UPDATE "{table}"') and "updated_at" in q["sql"]
        for q in queries.captured_queries
    )


def test_the_heartbeat_moves_at_most_once_a_second(make_users, monkeypatch):
    make_users(20, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    clock = iter(range(0, 10_000, 1))  # every reading 1 ms later: 20 pages in 20 ms
    monkeypatch.setattr("offchat_notify.delivery.writer.monotonic", lambda: next(clock) / 1000)
    with CaptureQueriesContext(connection) as queries:
        assert write(event, page_size=1) == 20
    assert heartbeats(queries) == 0


def test_a_slow_delivery_beats_on_every_page_that_ends_past_the_interval(make_users, monkeypatch):
    make_users(6, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    clock = iter(range(0, 10_000, 2))  # every reading 2 s later
    monkeypatch.setattr("offchat_notify.delivery.writer.monotonic", lambda: float(next(clock)))
    before = Event.objects.get(pk=event.pk).updated_at
    with CaptureQueriesContext(connection) as queries:
        assert write(event, page_size=1) == 6
    assert heartbeats(queries) == len(inserts(queries)) == 7  # 6 users and the empty tail
    assert Event.objects.get(pk=event.pk).updated_at > before


def test_the_heartbeat_stays_well_under_a_short_stuck_after(make_users, monkeypatch):
    make_users(4, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    clock = iter(range(0, 10_000, 300))  # 0.3 s a page; STUCK_AFTER 1 s beats every 0.2 s
    monkeypatch.setattr("offchat_notify.delivery.writer.monotonic", lambda: next(clock) / 1000)
    with CaptureQueriesContext(connection) as queries:
        write(event, page_size=1, stuck_after=1)
    assert heartbeats(queries) == len(inserts(queries)) == 5
