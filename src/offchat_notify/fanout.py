"""Writing Notification rows: set-based where the database allows, in bounded pages.

``INSERT INTO notification (event_id, recipient_id) SELECT %s, id FROM (users
of this page) ON CONFLICT DO NOTHING``: the recipients go from the user table
to the notification table inside the database, and no id travels through
Python. Pages are ranges of user primary keys; only one boundary id per page is
read. Databases without "ignore conflicts" inserts fall back to reading the
page's ids and ``bulk_create(ignore_conflicts=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connections, router
from django.db.models import F, QuerySet
from django.db.models.constants import OnConflict

from . import metrics
from .audience import Audience, Window, active_users, audience_q
from .models import Notification
from .roles import BaseRoles


def iter_pages(
    audience: Audience,
    resolver: BaseRoles,
    page_size: int,
    *,
    after: Any = None,
    until: Any = None,
) -> Iterator[tuple[Any, QuerySet]]:
    """Yield ``(last_pk, users)``: querysets of users in ascending, disjoint
    primary-key ranges of at most ``page_size`` users, that together are the
    audience's active users with ``after < pk <= until``.

    ``last_pk`` is the range's inclusive upper bound (``None``: to the end).
    Only the boundary ids are read; the querysets are for ``INSERT ... SELECT``.
    """
    while True:
        window = Window(after, page_size)
        page = active_users().filter(audience_q(audience, resolver, window)).order_by()
        if after is not None:
            page = page.filter(pk__gt=after)
        upper = window.upper
        if until is not None and (upper is None or until < upper):
            upper = until
        if upper is not None:
            page = page.filter(pk__lte=upper)
        boundary = list(page.order_by("pk").values_list("pk", flat=True)[page_size - 1 : page_size])
        if boundary and boundary[0] != upper:
            yield boundary[0], page.filter(pk__lte=boundary[0])
            after = boundary[0]
            continue
        yield upper, page
        if upper is None or upper == until:
            return
        after = upper


def insert_page(event_id: int, users: QuerySet) -> int:
    """Write one page of Notification rows for ``event_id``; return how many were new."""
    using = router.db_for_write(Notification)
    connection = connections[using]
    if not connection.features.supports_ignore_conflicts or users.db != using:
        return _bulk_create(event_id, users)
    quote = connection.ops.quote_name
    meta = Notification._meta
    event_col = quote(meta.get_field("event").column)
    recipient_col = quote(meta.get_field("recipient").column)
    select = users.annotate(offchat_recipient=F("pk")).values("offchat_recipient")
    select_sql, params = select.query.sql_with_params()
    fields = [meta.get_field("event"), meta.get_field("recipient")]
    sql = (
        f"{connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)} "
        f"{quote(meta.db_table)} ({event_col}, {recipient_col}) "
        f"SELECT %s, page.{quote('offchat_recipient')} FROM ({select_sql}) page "
        f"{connection.ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (event_id, *params))
        added = max(cursor.rowcount, 0)
    metrics.written(added)
    return added


def _bulk_create(event_id: int, users: QuerySet) -> int:
    ids = list(users.values_list("pk", flat=True))
    before = Notification.objects.filter(event_id=event_id).count()
    Notification.objects.bulk_create(
        [Notification(event_id=event_id, recipient_id=pk) for pk in ids], ignore_conflicts=True
    )
    added = Notification.objects.filter(event_id=event_id).count() - before
    metrics.written(added)
    return added
