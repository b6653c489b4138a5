"""Staging the members of roles a resolver can only list (``roles.ListedRoles``).

Set-based delivery needs the audience inside the database. A resolver that
can only list ids (a directory, an API) gets its members copied there first:
:func:`stage` writes, at the start of each delivery attempt, the members of
every role the audience names into
:class:`~offchat_notify.models.StagedMember`, with
``COPY`` on PostgreSQL (psycopg 3) and batched inserts elsewhere, and returns
a resolver whose roles select from those rows. From there delivery is the
same as for any other role: pages, chunks, exclusions, the active-user
filter, idempotent inserts.

Staging replaces an Event's rows in one transaction, so a chunk job reading
them while another attempt re-stages sees the old members or the new ones,
never none. :func:`unstage` drops them once the Event is delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.db.models import Count, Max, Q

from offchat_notify.conf import get_settings
from offchat_notify.exceptions import InvalidNotification
from offchat_notify.models import StagedMember
from offchat_notify.roles import BaseRoles, ListedRoles, Page, Window, get_role_resolver
from offchat_notify.roles.spec import Spec, roles, to_pk

logger = logging.getLogger(__name__)


class StagedRoles(BaseRoles):
    """The roles of one Event, read from its staged members."""

    def __init__(self, resolver: ListedRoles, event_id: int) -> None:
        self.resolver = resolver
        self.event_id = event_id

    def known(self, role: str) -> bool:
        return self.resolver.known(role)

    def filter(self, role: str) -> Q:
        return Q(pk__in=self._members(role, None).values("user_id"))

    def _members(self, role: str, after: Any, until: Any = None) -> Any:
        members = StagedMember.objects.filter(event_id=self.event_id, role=role)
        if after is not None:
            members = members.filter(user_id__gt=after)
        if until is not None:
            members = members.filter(user_id__lte=until)
        return members

    def page(self, role: str, window: Window) -> Page:
        """The page's staged members, bounded on both sides.

        The (event, role, user) index gives them in user order: the page ends
        at its ``page_size``-th staged member, so no statement lists more than
        a page (SQLite builds an ``IN`` list for every statement), and the
        count tells delivery the page cannot hold more.
        """
        members = self._members(role, window.after, window.until)
        head = members.order_by("user_id").values("user_id")[: window.page_size]
        found = head.aggregate(last=Max("user_id"), count=Count("user_id"))
        upper = None
        if found["count"] == window.page_size:
            upper = found["last"]
            members = members.filter(user_id__lte=upper)
        return Page(Q(pk__in=members.values("user_id")), upper, found["count"])


def resolver_for(event_id: int) -> BaseRoles:
    """The resolver to deliver ``event_id`` with, its members already staged."""
    resolver = get_role_resolver()
    if isinstance(resolver, ListedRoles):
        return StagedRoles(resolver, event_id)
    return resolver


def stage(event_id: int, audience: Spec) -> BaseRoles:
    """Stage the members of the audience's roles if the resolver only lists them;
    return the resolver to deliver with."""
    resolver = get_role_resolver()
    if not isinstance(resolver, ListedRoles):
        return resolver
    using = router.db_for_write(StagedMember)
    with transaction.atomic(using=using):
        StagedMember.objects.using(using).filter(event_id=event_id).delete()
        for role in roles(audience):
            ids = _checked(resolver, role, resolver.members(role))
            count, how = _write(using, event_id, role, ids)
            logger.debug(
                "Event %s: staged %d member(s) of role %s (%s).", event_id, count, role, how
            )
    _analyze(using)
    return resolver_for(event_id)


def _analyze(using: str) -> None:
    """Refresh the staging table's statistics, so the page queries are planned for
    its real size and not for the empty table autovacuum last saw."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(StagedMember._meta.db_table)}")


def unstage(event_id: int) -> None:
    """Drop the Event's staged members (it is delivered; they are not needed again).

    Only a resolver that lists ids stages anything; with any other, this costs
    no query. (Rows staged before the resolver setting changed go with their
    Event, which retention deletes.)
    """
    if isinstance(get_role_resolver(), ListedRoles):
        StagedMember.objects.filter(event_id=event_id).delete()


def _checked(resolver: BaseRoles, role: str, values: Iterable[Any]) -> Iterator[Any]:
    """The listed values as primary keys; anything else is an error naming the resolver."""
    fast = int if isinstance(get_user_model()._meta.pk.to_python(1), int) else None
    for value in values:
        if type(value) is fast:
            yield value
            continue
        try:
            yield to_pk(value)
        except InvalidNotification as e:
            raise InvalidNotification(
                f"{type(resolver).__name__}.members({role!r}) yielded {value!r}: {e}"
            ) from None


def _write(using: str, event_id: int, role: str, ids: Iterator[Any]) -> tuple[int, str]:
    """Write the ids ``PAGE_SIZE`` at a time; return how many, and how.

    The resolver is never iterated while a write is in progress: it may read
    the same database (a server-side cursor on this very connection), which
    an open ``COPY`` would block.
    """
    connection = connections[using]
    copy = connection.vendor == "postgresql" and _psycopg3(connection)
    size = get_settings().PAGE_SIZE
    count = 0
    while batch := list(islice(ids, size)):
        if copy:
            _copy(connection, event_id, role, batch)
        else:
            _insert(connection, event_id, role, batch)
        count += len(batch)
    return count, "COPY" if copy else "bulk insert"


def _psycopg3(connection: Any) -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


def _columns(connection: Any) -> str:
    quote = connection.ops.quote_name
    fields = (StagedMember.event.field, StagedMember.role.field, StagedMember.user.field)
    return ", ".join(quote(f.column) for f in fields)


def _insert(connection: Any, event_id: int, role: str, ids: list[Any]) -> None:
    """One prepared ``INSERT`` run for every id (``executemany``): no model instances."""
    table = connection.ops.quote_name(StagedMember._meta.db_table)
    sql = f"INSERT INTO {table} ({_columns(connection)}) VALUES (%s, %s, %s)"
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(event_id, role, pk) for pk in ids])


def _copy(connection: Any, event_id: int, role: str, ids: list[Any]) -> None:
    table = connection.ops.quote_name(StagedMember._meta.db_table)
    sql = f"COPY {table} ({_columns(connection)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for pk in ids:
            copy.write_row((event_id, role, pk))
