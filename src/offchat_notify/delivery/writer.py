"""Writing Notification rows: set-based where the database allows, in bounded pages.

``INSERT INTO notification (event_id, recipient_id) SELECT %s, id FROM (users
of this page)``: the recipients go from the user table to the notification
table inside the database, and no id travels through Python. Pages are ranges
of user primary keys. On PostgreSQL one statement per page takes the next
``page_size`` users, writes them and returns the page's last id
(:func:`insert_first`); elsewhere one query finds the page's last id and a
second writes the page (:func:`iter_pages`). Databases without
"ignore conflicts" inserts fall back to reading the page's ids and
``bulk_create(ignore_conflicts=True)``.

A :class:`PageWriter` writes one Event's pages. It starts with plain
``INSERT`` statements, the fast way on a first attempt where no row exists yet; the
first page that meets a row already there (a retry, a relayed duplicate, two
workers on one Event) is written again with ``ON CONFLICT DO NOTHING``, and so
is every later page. The unique (event, recipient) constraint keeps every
path exactly-once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from time import monotonic
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Field, QuerySet
from django.db.models.constants import OnConflict
from django.utils import timezone

from offchat_notify import metrics
from offchat_notify.channels import live
from offchat_notify.models import Event, Notification
from offchat_notify.roles import BaseRoles
from offchat_notify.roles.spec import Spec

from .pages import iter_pages, next_page

#: At most one heartbeat (``Event.updated_at``) per this many seconds. The relay
#: takes a delivering Event whose heartbeat is older than ``STUCK_AFTER`` as
#: stuck, so this must stay well under it (the setting's minimum is 1 s; see
#: :meth:`PageWriter.beat`).
HEARTBEAT = 1.0

_T = TypeVar("_T")


class PageWriter:
    """Write the pages of one Event, keep its heartbeat, count the rows added."""

    def __init__(self, event_id: int, *, stuck_after: float) -> None:
        self.event_id = event_id
        self.added = 0
        self.ignore_conflicts = False  # until a page meets a row already written
        self.heartbeat = min(HEARTBEAT, stuck_after / 5)
        self._last_beat = monotonic()

    def write(self, users: QuerySet[Any]) -> int:
        """Write one page of Notification rows; return how many were new."""
        added = self._insert(insert_page, users)
        self.added += added
        self.beat()
        return added

    def write_first(self, users: QuerySet[Any], count: int) -> tuple[Any, bool]:
        """Write the first ``count`` of ``users`` in primary-key order, in one
        statement; return the last primary key written to and whether there
        were ``count`` of them (PostgreSQL)."""
        last, found, added = self._insert(insert_first, users, count)
        self.added += added
        self.beat()
        return last, found == count

    def _insert(self, insert: Callable[..., _T], *args: Any) -> _T:
        """``insert(event_id, *args)``: plain until a page meets a written row,
        which is then written again, and every later page, ignoring conflicts."""
        if not self.ignore_conflicts:
            try:
                return insert(self.event_id, *args, ignore_conflicts=False)
            except IntegrityError:
                self.ignore_conflicts = True
        return insert(self.event_id, *args)

    def beat(self) -> None:
        """Move the Event's ``updated_at``: this delivery is alive (throttled)."""
        now = monotonic()
        if now - self._last_beat >= self.heartbeat:
            Event.objects.filter(pk=self.event_id).update(updated_at=timezone.now())
            self._last_beat = now


@dataclasses.dataclass(frozen=True)
class Written:
    """What :func:`write_range` did: rows added, where to resume (the last
    primary key covered), whether the range is done, and whether no page met a
    row already there (then ``added`` is every row of the range)."""

    added: int
    after: Any
    done: bool
    clean: bool


def write_range(
    event_id: int,
    audience: Spec,
    resolver: BaseRoles,
    *,
    page_size: int,
    stuck_after: float,
    after: Any = None,
    until: Any = None,
    pages: int | None = None,
) -> Written:
    """Write the Notification rows of ``event_id`` for its audience with
    ``after < pk <= until``, a page at a time, stopping after ``pages`` pages
    if given.

    On PostgreSQL each page is one statement that reads the page's users once
    (:func:`insert_first`); elsewhere a page is found (:func:`iter_pages`),
    then written.
    """
    writer = PageWriter(event_id, stuck_after=stuck_after)
    written = 0
    if not _one_statement_pages():
        for last, users in iter_pages(audience, resolver, page_size, after=after, until=until):
            if writer.write(users):
                live.publish_page(event_id, after, last)  # once per page, after commit
            after = last
            written += 1
            if last is None or last == until:
                break
            if pages is not None and written >= pages:
                return Written(writer.added, last, False, not writer.ignore_conflicts)
        return Written(writer.added, until, True, not writer.ignore_conflicts)
    memo: dict[Any, Any] = {}
    while True:
        users, upper, _most = next_page(audience, resolver, page_size, after, until, memo)
        before = writer.added
        last, full = writer.write_first(users, page_size)
        if writer.added > before:
            live.publish_page(event_id, after, last)  # once per page, after commit
        written += 1
        if full and last != upper:
            after = last  # the page is full: more may follow below upper
        elif upper is None or upper == until:
            return Written(writer.added, until, True, not writer.ignore_conflicts)
        else:
            after = upper
        if pages is not None and written >= pages:
            return Written(writer.added, after, False, not writer.ignore_conflicts)


def _one_statement_pages() -> bool:
    """Whether pages can be found and written in one statement (a data-modifying
    ``WITH``, and a user table on the same database)."""
    using = router.db_for_write(Notification)
    return connections[using].vendor == "postgresql" and (
        router.db_for_read(get_user_model()) == using
    )


def insert_first(
    event_id: int, users: QuerySet[Any], count: int, *, ignore_conflicts: bool = True
) -> tuple[Any, int, int]:
    """PostgreSQL: write the first ``count`` of ``users`` (by primary key) in one
    statement; return the last of them, how many there were, and the rows added.

    ``WITH page AS (SELECT id ... ORDER BY id LIMIT count), ins AS (INSERT ...
    SELECT %s, id FROM page RETURNING 1) SELECT max, count, inserted``: the
    page is read once, and only three numbers come back.
    """
    connection = connections[router.db_for_write(Notification)]
    first = (
        users.annotate(offchat_recipient=F("pk")).order_by("pk").values("offchat_recipient")[:count]
    )
    try:
        # Compiled for the database written, not the default one: quoting and
        # placeholders differ between vendors.
        select_sql, params = first.query.get_compiler(connection.alias).as_sql()
    except EmptyResultSet:  # a page that can hold no one: an empty id list
        return None, 0, 0
    insert, suffix = _insert_sql(connection, ignore_conflicts)
    column = connection.ops.quote_name("offchat_recipient")
    sql = (
        f"WITH page AS ({select_sql}), ins AS ("
        f"{insert} SELECT %s, page.{column} FROM page {suffix} RETURNING 1) "
        f"SELECT (SELECT max(page.{column}) FROM page), (SELECT count(*) FROM page), "
        f"(SELECT count(*) FROM ins)"
    )
    with _guard(connection, ignore_conflicts), connection.cursor() as cursor:
        cursor.execute(sql, (*params, event_id))
        last, found, added = cursor.fetchone()
    metrics.written(added)
    return last, found, added


def insert_page(event_id: int, users: QuerySet[Any], *, ignore_conflicts: bool = True) -> int:
    """Write one page of Notification rows for ``event_id``; return how many were new.

    With ``ignore_conflicts=False`` a row already there raises
    :class:`~django.db.IntegrityError` and the page writes nothing (inside a
    transaction, only the page's savepoint is rolled back).
    """
    using = router.db_for_write(Notification)
    connection = connections[using]
    if not connection.features.supports_ignore_conflicts or users.db != using:
        return _bulk_create(event_id, users)
    select = users.annotate(offchat_recipient=F("pk")).values("offchat_recipient")
    try:
        select_sql, params = select.query.get_compiler(using).as_sql()
    except EmptyResultSet:  # a page that can hold no one: an empty id list
        return 0
    insert, suffix = _insert_sql(connection, ignore_conflicts)
    column = connection.ops.quote_name("offchat_recipient")
    sql = f"{insert} SELECT %s, page.{column} FROM ({select_sql}) page {suffix}"
    with _guard(connection, ignore_conflicts), connection.cursor() as cursor:
        cursor.execute(sql, (event_id, *params))
        added: int = max(cursor.rowcount, 0)
    metrics.written(added)
    return added


def _insert_sql(connection: Any, ignore_conflicts: bool) -> tuple[str, str]:
    """``INSERT [OR IGNORE] INTO notification (event_id, recipient_id)`` and the
    statement's conflict clause (``ON CONFLICT DO NOTHING``, or nothing)."""
    quote = connection.ops.quote_name
    meta = Notification._meta
    fields: list[Field[Any, Any]] = [Notification.event.field, Notification.recipient.field]
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    insert = (
        f"{connection.ops.insert_statement(on_conflict=on_conflict)} {quote(meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)})"
    )
    return insert, connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)


def _guard(connection: Any, ignore_conflicts: bool) -> Any:
    """A savepoint for a plain insert inside the caller's transaction: the
    conflict it may raise must not poison that transaction."""
    if connection.in_atomic_block and not ignore_conflicts:
        return transaction.atomic(using=connection.alias)
    return contextlib.nullcontext()


def _bulk_create(event_id: int, users: QuerySet[Any]) -> int:
    ids = list(users.values_list("pk", flat=True))
    before = Notification.objects.filter(event_id=event_id).count()
    Notification.objects.bulk_create(
        [Notification(event_id=event_id, recipient_id=pk) for pk in ids], ignore_conflicts=True
    )
    added = Notification.objects.filter(event_id=event_id).count() - before
    metrics.written(added)
    return added
