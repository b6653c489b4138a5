"""A small delivery costs a fixed, small number of statements (issue #13, item 2).

The counts are the budget: a change that adds a round trip to every delivery
makes this fail, and must say why in the count it changes.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from offchat_notify import Audience
from offchat_notify.delivery import deliver
from offchat_notify.models import Event, Notification
from offchat_notify.roles import get_role_resolver

pytestmark = pytest.mark.django_db(transaction=True)  # a worker runs outside any transaction


def counts_rows(sql: str) -> bool:
    """Whether ``sql`` counts an Event's notification rows."""
    return sql.startswith("SELECT COUNT(*)") and '"offchat_notify_notification"' in sql


def statements(event: Event, published: list[str] | None = None) -> list[str]:
    """The statements of one delivery, less the live stream's publish (``pg_notify``,
    one per page, after its commit: issue #14), which go to ``published``."""
    get_role_resolver().validate("admin")  # the request validated the role already
    with CaptureQueriesContext(connection) as queries:
        deliver(event.pk)
    sql = [q["sql"] for q in queries.captured_queries]
    if published is not None:
        published.extend(s for s in sql if s.startswith("SELECT pg_notify("))
    return [s for s in sql if not s.startswith("SELECT pg_notify(")]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"})
def test_a_role_audience_of_one_page_is_claimed_written_and_finished_in_four_statements(
    make_users,
):
    make_users(10, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    published: list[str] = []
    sql = statements(event, published)
    # One page: one live publish (over PostgreSQL here, as LIVE "auto" picks it).
    assert len(published) == (1 if connection.vendor == "postgresql" else 0)
    # The claim (one statement on PostgreSQL), the group's id, the page, the
    # finish. No chunk planning (the first page was not full), no heartbeat
    # (one page), no count (a first attempt that met no row knows it wrote
    # them all), no re-read of the Event. (0.1 took 12.)
    if connection.vendor == "postgresql":
        assert len(sql) == 4, "\n".join(sql)
        assert not any("OFFSET" in s for s in sql)  # no search for a page's or chunk's end
    assert not any(s.startswith('SELECT "offchat_notify_deliverychunk"') for s in sql)
    assert not any("LIMIT 1 OFFSET 49999" in s for s in sql)  # no chunk planning
    assert not any(counts_rows(s) for s in sql)
    event.refresh_from_db()
    assert (event.state, event.recipient_count) == (Event.State.DELIVERED, 10)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"})
def test_a_retry_counts_what_is_there_instead_of_trusting_what_it_added(make_users):
    users = make_users(6, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    # An earlier attempt wrote two rows, then died.
    Notification.objects.bulk_create([Notification(event=event, recipient=u) for u in users[:2]])
    Event.objects.filter(pk=event.pk).update(attempts=1)
    sql = statements(event)
    assert any(counts_rows(s) for s in sql)
    event.refresh_from_db()
    assert (event.state, event.recipient_count) == (Event.State.DELIVERED, 6)


@pytest.mark.postgres
@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "EMAIL_BATCH_SIZE": 3})
def test_a_channel_batch_is_claimed_in_one_statement_on_rows_updated_in_place(make_users):
    from offchat_notify.channels import sends
    from offchat_notify.models import ChannelSend

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement claim and the fillfactor are PostgreSQL's")
    # Given an Event's 5 pending email sends
    users = make_users(5)
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec, channels=["email"])
    for user in users:
        ChannelSend.objects.create(event=event, recipient=user, channel="email")
    # When a job claims a batch: the claim, the Event, the recipients
    with CaptureQueriesContext(connection) as queries:
        batch = sends.claim(event.pk, "email", 3, lease=15)
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 3, sql
    assert sql[0].startswith("WITH picked AS") and "RETURNING" in sql[0]
    # Then it holds the first three, with their recipients, and nothing else reads the table
    assert [s.recipient_id for s in batch] == [u.pk for u in users[:3]]
    assert [s.recipient.username for s in batch] == [u.username for u in users[:3]]
    assert {s.attempts for s in batch} == {1}
    with CaptureQueriesContext(connection) as queries:
        assert [s.event.verb for s in batch] == ["x"] * 3 and {s.channel for s in batch} == {
            "email"
        }
    assert queries.captured_queries == []
    # And the table leaves room in its pages for those in-place (HOT) updates
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", [ChannelSend._meta.db_table]
        )
        assert "fillfactor=50" in cursor.fetchone()[0]
