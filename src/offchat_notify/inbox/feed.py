"""What the stream reads from the table (sync: run through ``sync_to_async``).

Each function is one or two queries on the inbox indexes. A stream lasts for
hours, so whoever calls them closes the database connection afterwards
(:func:`release_connections`, :func:`keep_open`): a thousand open streams
must not hold a thousand database connections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.db.models import Count

from offchat_notify.models import Event, Notification

from .items import event_fields, item

_T = TypeVar("_T")

#: One notification ready to send: (recipient id, notification id, the item as
#: a JSON-ready dict or as JSON already encoded).
Ready = tuple[Any, int, dict[str, Any] | str]


def keep_open(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)`` on a connection this thread keeps open (the hub's one reader
    thread: one connection per web process, whatever ``CONN_MAX_AGE``). After an
    error the connection is closed, so the next read opens a fresh one."""
    try:
        return func(*args)
    except Exception:
        close_connections()
        raise


def close_connections() -> None:
    """Close this thread's database connections (those not inside a transaction)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def release_connections(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)``, then close this thread's database connections whatever their
    age (a stream's own reads: the stream holds its thread for hours)."""
    try:
        return func(*args)
    finally:
        close_connections()


def page_items(event_id: int, user_ids: Collection[Any]) -> list[Ready]:
    """The notifications of ``event_id`` for those of ``user_ids`` it reached, each
    with its recipient's unread count.

    One query finds the recipients among ``user_ids`` (narrow rows, no join);
    the Event, which every item shares, is read and turned into JSON once, and
    the unread counts of all of them come from one grouped query on the
    unread index: three or four queries whatever the number of recipients.
    """
    rows = list(
        Notification.objects.filter(event_id=event_id, recipient_id__in=list(user_ids))
        .order_by()
        .values_list("recipient_id", "id", "created_at", "read_at")
    )
    if not rows:
        return []
    event = Event.objects.select_related("actor").filter(pk=event_id).first()
    if event is None:  # deleted meanwhile: the inbox never shows its rows
        return []
    # The item's JSON, built once for the page: every recipient's differs only
    # in its id, times and unread count (JSON strings: an ISO time needs no escape).
    shared = json.dumps(event_fields(event), cls=DjangoJSONEncoder, separators=(",", ":"))
    unread = dict(
        Notification.objects.filter(recipient_id__in=[r[0] for r in rows], read_at__isnull=True)
        .order_by()
        .values("recipient_id")
        .annotate(n=Count("*"))
        .values_list("recipient_id", "n")
    )
    return [
        (
            recipient,
            pk,
            f'{{"id":{int(pk)},{shared[1:-1]},"created_at":"{created.isoformat()}",'
            f'"read_at":{_json_time(read)},"unread":{int(unread.get(recipient, 0))}}}',
        )
        for recipient, pk, created, read in rows
    ]


def _json_time(value: Any) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def missed(user_id: Any, after: int, limit: int) -> list[Ready]:
    """The user's notifications with an id above ``after``: the newest ``limit`` of
    them, oldest first, each with the user's unread count. Two queries."""
    mine = Notification.objects.for_user(user_id)
    rows = list(mine.filter(id__gt=after).with_event()[:limit])
    if not rows:
        return []
    unread = mine.unread().count()
    return [(user_id, row.pk, {**item(row), "unread": unread}) for row in reversed(rows)]


def latest_id(user_id: Any) -> int:
    """The id of the user's newest notification (0 if none): where a new stream starts."""
    found = Notification.objects.for_user(user_id).order_by("-id").values_list("id", flat=True)[:1]
    return next(iter(found), 0)
