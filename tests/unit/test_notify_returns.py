"""What the Event that notify() returns says (issue #12): the truth, without a query
the caller did not need."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from offchat_notify import Audience, notify, notify_admins
from offchat_notify.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def event_selects(queries: CaptureQueriesContext) -> list[str]:
    table = Event._meta.db_table
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT") and table in q["sql"]
    ]


@pytest.mark.parametrize("backend", ["sync", "eager"])
def test_in_autocommit_an_in_process_backend_returns_the_delivered_event(make_users, backend):
    # Given three admins and a backend that delivers in this process
    make_users(3, group="admin")
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": backend}):
        # When notify_admins() is called outside any transaction
        event = notify_admins("backup.failed", title="Nightly backup failed")
    # Then the Event it returns says what the database says: delivered, to three
    stored = Event.objects.get(pk=event.pk)
    assert (event.state, event.recipient_count, event.attempts) == ("delivered", 3, 1)
    assert event.delivered_at == stored.delivered_at is not None
    assert (event.started_at, event.duration_ms, event.updated_at) == (
        stored.started_at,
        stored.duration_ms,
        stored.updated_at,
    )


def test_inside_atomic_it_is_pending_until_commit_and_costs_no_query(make_users):
    make_users(2, group="admin")
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"}):
        with transaction.atomic():
            with CaptureQueriesContext(connection) as queries:
                event = notify(Audience.role("admin"), "message.sent")
            # Inside the transaction nothing is delivered yet, and nothing was read back
            assert event.state == Event.State.PENDING
            assert event_selects(queries) == []
        # Once it commits, the sync backend has delivered it, and the Event says so
        assert (event.state, event.recipient_count) == ("delivered", 2)


def test_a_worker_backend_returns_the_pending_event_without_reading_it_back(make_users):
    make_users(2, group="admin")
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"}),
        CaptureQueriesContext(connection) as queries,
    ):
        event = notify(Audience.role("admin"), "message.sent")
    assert event.state == Event.State.PENDING
    assert event_selects(queries) == []
