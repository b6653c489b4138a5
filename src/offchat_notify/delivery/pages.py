"""Pages of an audience: its active users in ascending, disjoint primary-key ranges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from offchat_notify.roles import BaseRoles, Window
from offchat_notify.roles.spec import Spec, active_users, page


def iter_pages(
    audience: Spec,
    resolver: BaseRoles,
    page_size: int,
    *,
    after: Any = None,
    until: Any = None,
) -> Iterator[tuple[Any, QuerySet[Any]]]:
    """Yield ``(last_pk, users)``: querysets of users in ascending, disjoint
    primary-key ranges of at most ``page_size`` users, that together are the
    audience's active users with ``after < pk <= until``.

    ``last_pk`` is the range's inclusive upper bound (``None``: to the end).
    Only the boundary ids are read; the querysets are for ``INSERT ... SELECT``.
    A page whose filters say they select at most ``page_size`` users in it
    (id lists cut to the page, :attr:`~offchat_notify.roles.Page.most`)
    ends where they end it, without reading its boundary among the users.
    """
    memo: dict[Any, Any] = {}  # what the audience's filters learn once for the whole pass
    while True:
        users, upper, most = next_page(audience, resolver, page_size, after, until, memo)
        if most is not None and most <= page_size:
            boundary = []  # the page cannot hold more than a page: no need to find its end
        else:
            boundary = list(
                users.order_by("pk").values_list("pk", flat=True)[page_size - 1 : page_size]
            )
        if boundary and boundary[0] != upper:
            yield boundary[0], users.filter(pk__lte=boundary[0])
            after = boundary[0]
            continue
        yield upper, users
        if upper is None or upper == until:
            return
        after = upper


def next_page(
    audience: Spec,
    resolver: BaseRoles,
    page_size: int,
    after: Any,
    until: Any,
    memo: dict[Any, Any],
) -> tuple[QuerySet[Any], Any, int | None]:
    """The audience's active users above ``after``, up to where the page's
    filters and ``until`` let it go: ``(users, upper, most)``, ``upper``
    ``None`` when nothing bounds the page above, ``most`` how many users the
    filters select in the page at most (``None``: unknown)."""
    found = page(audience, resolver, Window(after, page_size, until=until, memo=memo))
    users = active_users().filter(found.q).order_by()
    if after is not None:
        users = users.filter(pk__gt=after)
    upper = found.upper
    if until is not None and (upper is None or until < upper):
        upper = until
    if upper is not None:
        users = users.filter(pk__lte=upper)
    return users, upper, found.most
