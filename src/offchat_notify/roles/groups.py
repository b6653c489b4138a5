"""The default role resolver: a role is a ``django.contrib.auth`` Group."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import Count, F, ManyToManyField, Max, Min, Q

from offchat_notify.exceptions import NotifyConfigurationError

from .base import BaseRoles, Page, Window, _CachedExistence


@dataclasses.dataclass(frozen=True)
class _GroupPass:
    """A group's members in one pass on SQLite, as read when the pass began."""

    group_id: Any
    count: int  # members in the pass's range
    ranged: bool  # read by ranges of the membership index, else list the group for every page
    first: Any = None  # the first and the last member (when ranged)
    last: Any = None


class GroupRoles(BaseRoles):
    """A role is a ``django.contrib.auth`` Group; its holders are the group's members.

    This is the default resolver. ``Audience.role("admin")`` means "members of
    the Group named admin".

    On SQLite, whose ``IN (subquery)`` builds the whole subquery for every
    statement, and whose ``auth_user_groups`` has no index on ``(group_id,
    user_id)``, a large group is read page by page from the unique
    ``(user_id, group_id)`` index instead (see :meth:`page`).
    """

    #: On SQLite, a group larger than a page is read by ranges of the
    #: membership index when the membership table (every group's rows, the
    #: most the ranges can read) holds at most this many times what listing
    #: the group for every page would read (``members x pages``). Measured on
    #: 1,000,000 users: even at about 6, ranges twice as fast at 1.6, twice
    #: as slow at 30.
    RANGE_WORTH = 4

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        user_model = get_user_model()
        try:
            user_model._meta.get_field("groups")
        except FieldDoesNotExist:
            raise NotifyConfigurationError(
                f"OFFCHAT_NOTIFY['ROLE_RESOLVER']: GroupRoles needs user.groups, and "
                f"{user_model._meta.label} has no groups field (no PermissionsMixin). Use "
                "offchat_notify.roles.FieldRoles or FlagRoles."
            ) from None
        self._cache = _CachedExistence()

    def known(self, role: str) -> bool:
        from django.contrib.auth.models import Group

        return self._cache(role, lambda: Group.objects.filter(name=role).exists())

    def filter(self, role: str) -> Q:
        return self._members_after(role, None)

    def _members_after(self, role: str, after: Any) -> Q:
        through, user, group = _membership()
        # The group's id, not a join on its name: with groups of very different
        # sizes the planner then knows how large this one is.
        membership = through.objects.filter(**{group: _group_id(role)})
        if after is not None and connections[membership.db].vendor != "sqlite":
            # Bounded here too, or every page re-reads the group from its start
            # (PostgreSQL does not push the outer bound into the subquery).
            # SQLite builds the subquery's list for every statement either way,
            # and the bound only makes that list slower to build there.
            membership = membership.filter(**{f"{user}__gt": after})
        return Q(pk__in=membership.values(user))

    def page(self, role: str, window: Window) -> Page:
        """The group's members above ``window.after``; on SQLite, a large group by ranges.

        SQLite builds an ``IN (subquery)``'s whole list for every statement, and
        ``auth_user_groups`` has no ``(group_id, user_id)`` index to read a
        group's members in user order: listing the group for every page makes
        a pass quadratic in the group's size. So a pass starts by counting the
        group's members (on the ``group_id`` index). A group of at most
        ``page_size`` is listed as it is. A larger one has its first and last
        member read once, then is read from the unique ``(user_id, group_id)``
        index by user range: each page reads where its ``page_size``-th member
        is (one range read), ends there, and lists only the members up to
        there; the last page ends at the group's last member. Every page costs
        about the same and the pass is linear in the memberships the group
        spans. Members who join above the group's last member during the pass
        wait for the next delivery. A group spread thinly over many more
        memberships (of other groups) than listing it for every page would
        read is listed per page instead (:attr:`RANGE_WORTH`).
        """
        cls = type(self)
        if cls.page_filter is not BaseRoles.page_filter or (
            cls.window_filter is not BaseRoles.window_filter
        ):
            return super().page(role, window)  # a subclass on 0.1's hooks pages its own way
        through, user, group = _membership()
        if connections[through.objects.db].vendor != "sqlite":
            return Page(self._members_after(role, window.after))
        key = (GroupRoles, role)
        if key not in window.memo:
            window.memo[key] = self._sqlite_pass(role, window)
        state: _GroupPass = window.memo[key]
        if not state.ranged:
            members = through.objects.filter(**{group: state.group_id})
            most = state.count if state.count <= window.page_size else None
            return Page(Q(pk__in=members.values(user)), most=most)
        # "group_id + 0": the group_id index cannot serve it, so SQLite reads the
        # unique (user_id, group_id) index by user range (without statistics it
        # would take the group_id index, and read the whole group). One lower
        # and one upper bound each: SQLite bounds the range read by one of each.
        members = through.objects.alias(offchat_group=F(group) + 0).filter(
            offchat_group=state.group_id
        )
        after = window.after
        if after is None or after < state.first:
            members = members.filter(**{f"{user}__gte": state.first})
        else:
            members = members.filter(**{f"{user}__gt": after})
        end, upper, most = state.last, None, 0
        if after is None or after < state.last:
            head = members.filter(**{f"{user}__lte": end}).order_by(user).values(user)
            found = head[: window.page_size].aggregate(last=Max(user), count=Count(user))
            most = found["count"]
            if found["count"] == window.page_size:
                end = upper = found["last"]  # the page ends at its page_size-th member
        # (past the group's last member the range is empty, and reads nothing)
        return Page(Q(pk__in=members.filter(**{f"{user}__lte": end}).values(user)), upper, most)

    def _sqlite_pass(self, role: str, window: Window) -> _GroupPass:
        through, user, group = _membership()
        group_id = _group_id(role)
        members = through.objects.filter(**{group: group_id})
        if window.after is not None:
            members = members.filter(**{f"{user}__gt": window.after})
        if window.until is not None:
            members = members.filter(**{f"{user}__lte": window.until})
        count = members.count()  # the group_id index alone answers it
        if count <= window.page_size:
            return _GroupPass(group_id, count, ranged=False)
        budget = self.RANGE_WORTH * count * (count // window.page_size + 1)
        if through.objects.count() > budget:
            return _GroupPass(group_id, count, ranged=False)
        found = members.aggregate(first=Min(user), last=Max(user))
        if found["last"] is None:  # emptied meanwhile
            return _GroupPass(group_id, count, ranged=False)
        return _GroupPass(group_id, count, True, found["first"], found["last"])

    def unknown_hint(self, role: str) -> str:
        return f"Create the Group (Group.objects.create(name={role!r})) or fix the name."


def _membership() -> tuple[Any, str, str]:
    """The user-group membership model and its user and group id columns."""
    field = get_user_model()._meta.get_field("groups")
    assert isinstance(field, ManyToManyField)  # GroupRoles() checked that users have groups
    through: Any = field.remote_field.through  # the user model's, known at run time only
    user = through._meta.get_field(field.m2m_field_name()).attname
    group = through._meta.get_field(field.m2m_reverse_field_name()).attname
    return through, user, group


def _group_id(role: str) -> Any:
    from django.contrib.auth.models import Group

    return Group.objects.filter(name=role).values_list("pk", flat=True).first()
