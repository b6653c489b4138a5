"""The inbox API's queries walk the inbox indexes (PostgreSQL's own plans).

The table holds 20,000 notifications of 50 users, ANALYZEd, so the planner
chooses as it would on a live site; no planner setting is changed. The
statements are the ones the views sent, captured from real requests. The
timings at 1,000 and 1,000,000 rows are benchmarks/inbox_queries.py's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from offchat_notify import Audience
from offchat_notify.inbox import cursor
from offchat_notify.models import Event, Notification

TABLE = Notification._meta.db_table
#: The notification table's indexes (a Bitmap Index Scan names no table).
INDEXES = ("offchat_inbox_idx", "offchat_unread_idx", "offchat_notification_once", f"{TABLE}_pkey")


@pytest.fixture
def crowded(postgres: None, make_users) -> Any:
    """50 users, 400 Events, each to every user: 20,000 rows, 400 per inbox."""
    users = make_users(50)
    Event.objects.bulk_create(
        Event(verb="message.sent", title=f"m{n}", actor=users[n % 50],
              audience=Audience.users([1]).spec, state=Event.State.DELIVERED)
        for n in range(400)
    )  # fmt: skip
    with connection.cursor() as c:
        c.execute(
            f"INSERT INTO {TABLE} (event_id, recipient_id, created_at, read_at) "
            "SELECT e.id, u.id, now(), CASE WHEN (e.id + u.id) %% 10 = 0 THEN NULL ELSE now() END "
            f"FROM {Event._meta.db_table} e CROSS JOIN (SELECT id FROM {users[0]._meta.db_table} "
            "WHERE id = ANY(%s)) u ORDER BY e.id, u.id",
            [[u.pk for u in users]],
        )
        c.execute(f"ANALYZE {TABLE}")
        c.execute(f"ANALYZE {Event._meta.db_table}")
        c.execute(f"ANALYZE {users[0]._meta.db_table}")
    assert Notification.objects.count() == 20_000
    return users[0]


def inbox_statements(user: Any, url: str) -> list[str]:
    """The statements on the notification table that ``GET url`` sent, as sent."""
    client = Client()
    client.force_login(user)
    with CaptureQueriesContext(connection) as sent:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in sent.captured_queries if f'FROM "{TABLE}"' in q["sql"]]


def scans(sql: str) -> list[tuple[str, str | None]]:
    """(node type, index name) of each plan node that reads the notification table."""
    with connection.cursor() as c:
        c.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = c.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    found, stack = [], [plan]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", ()))
        if node["Node Type"] == "Bitmap Heap Scan" and node.get("Relation Name") == TABLE:
            continue  # its Bitmap Index Scan child names the index
        if node.get("Relation Name") == TABLE or node.get("Index Name") in INDEXES:
            found.append((node["Node Type"], node.get("Index Name")))
    return found


def test_a_page_walks_offchat_inbox_idx(crowded):
    # Given: the first page and a later one
    first = inbox_statements(crowded, reverse("offchat_notify_inbox:list"))
    mine = list(Notification.objects.for_user(crowded).values_list("id", flat=True))
    later = inbox_statements(
        crowded, f"{reverse('offchat_notify_inbox:list')}?cursor={cursor.encode(mine[30])}"
    )

    # Then: each page statement reads the table through the inbox index only
    for statement in (first[0], later[0]):
        assert "LIMIT 21" in statement
        used = scans(statement)
        assert used
        assert {index for _, index in used} == {"offchat_inbox_idx"}, used


def test_the_unread_count_reads_offchat_unread_idx(crowded):
    (count,) = inbox_statements(crowded, reverse("offchat_notify_inbox:unread"))
    [(node, index)] = scans(count)
    assert index == "offchat_unread_idx"
    assert node in ("Index Only Scan", "Index Scan", "Bitmap Index Scan")


def test_an_unread_page_uses_an_inbox_index(crowded):
    statements = inbox_statements(crowded, f"{reverse('offchat_notify_inbox:list')}?unread=1")
    used = scans(statements[0])
    assert used
    assert {index for _, index in used} <= {"offchat_inbox_idx", "offchat_unread_idx"}, used
