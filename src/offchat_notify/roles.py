"""Role resolvers: turn a role name into a filter on the user model.

A resolver is chosen by ``OFFCHAT_NOTIFY["ROLE_RESOLVER"]`` (a dotted path)
and built with ``OFFCHAT_NOTIFY["ROLE_RESOLVER_OPTIONS"]`` as keyword
arguments. Resolvers never load users: they return a ``Q`` that the worker
applies, page by page, to the user table.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import Count, F, Max, Min, Q
from django.utils.module_loading import import_string

from .conf import get_settings
from .exceptions import NotifyConfigurationError, UnknownRole

if TYPE_CHECKING:
    from .audience import Window


class BaseRoles:
    """Base class of role resolvers.

    Subclasses implement :meth:`known` (is this a role at all?) and
    :meth:`filter` (the users holding it). Unknown keyword options are refused
    so a typo in ``ROLE_RESOLVER_OPTIONS`` is an error, not a silent default.
    """

    def __init__(self, **options: Any) -> None:
        if options:
            raise NotifyConfigurationError(
                f"OFFCHAT_NOTIFY['ROLE_RESOLVER_OPTIONS']: {type(self).__name__} takes no "
                f"option {sorted(options)[0]!r}."
            )

    def known(self, role: str) -> bool:
        """Return whether ``role`` names a role this resolver can resolve."""
        raise NotImplementedError(f"{type(self).__name__} must implement known().")

    def filter(self, role: str) -> Q:
        """Return a filter on the user model selecting the holders of ``role``."""
        raise NotImplementedError(f"{type(self).__name__} must implement filter().")

    def page_filter(self, role: str, after: Any) -> Q:
        """Like :meth:`filter`, for the users with a primary key above ``after``.

        Delivery reads the audience a page at a time; a resolver whose filter
        is a subquery should bound it by the page, so that each page costs the
        same. The default adds nothing to :meth:`filter`.
        """
        return self.filter(role)

    def window_filter(self, role: str, window: Window) -> Q:
        """Optional hook: like :meth:`page_filter`, given the whole page
        (:class:`~offchat_notify.audience.Window`) rather than its lower bound.

        Delivery builds every page's filter through this method; the default
        returns ``page_filter(role, window.after)``, so a resolver that only
        implements :meth:`filter` or :meth:`page_filter` works as before.
        Override it when a lower bound alone cannot keep a page cheap: a
        resolver that can find its holders in primary-key order may end the
        page early with ``window.cap(pk)`` and bound its subquery on both
        sides, and, if it knows that its filter selects at most ``count``
        users in the page, say so with ``window.holds(count)`` (delivery then
        need not look for the page's end). ``window.until`` bounds the whole
        pass and ``window.memo`` keeps what the resolver learns once per pass.
        The filter must select every holder of ``role`` with ``window.after <
        pk <= upper``, ``upper`` being the page's end once every filter of the
        page is built (at most the resolver's own cap); outside that range it
        may select anything. See ``GroupRoles.window_filter``.
        """
        return self.page_filter(role, window.after)

    def validate(self, role: str) -> None:
        """Raise :class:`~offchat_notify.exceptions.UnknownRole` unless ``role`` is known."""
        if not self.known(role):
            raise UnknownRole(
                f"Unknown role {role!r} for {type(self).__name__}. {self.unknown_hint(role)}"
            )

    def unknown_hint(self, role: str) -> str:
        return ""


class ListedRoles(BaseRoles):
    """Base class of resolvers that can only list a role's members: a directory,
    an external API, a file.

    Implement ``known(role)`` and :meth:`members`. At the start of every delivery
    attempt, the members of each role the audience names are written to a
    staging table in bulk (``COPY`` on PostgreSQL with psycopg 3, batched
    inserts elsewhere), and the Notifications are then written set-based from
    it, like any other role's. The ids are streamed: :meth:`members` may be a
    generator of any length.
    """

    def members(self, role: str) -> Iterable[Any]:
        """Yield the primary keys (or instances) of the users holding ``role``."""
        raise NotImplementedError(f"{type(self).__name__} must implement members().")

    def filter(self, role: str) -> Q:
        raise NotImplementedError(
            f"{type(self).__name__} lists ids (ListedRoles): its members are staged for each "
            "delivery, so it has no filter(). Use members(role)."
        )


class _CachedExistence:
    """Remember, for a short while, role names already seen to exist.

    Validating a role costs a query on the request path; a name that existed a
    moment ago almost surely still does. Only positive answers are cached.
    """

    ttl = 30.0

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def __call__(self, role: str, exists: Any) -> bool:
        now = time.monotonic()
        if self._seen.get(role, 0.0) > now:
            return True
        if exists():
            self._seen[role] = now + self.ttl
            return True
        return False


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
    ``(user_id, group_id)`` index instead (see ``window_filter()``).
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
        return self.page_filter(role, None)

    def page_filter(self, role: str, after: Any) -> Q:
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

    def window_filter(self, role: str, window: Window) -> Q:
        """:meth:`page_filter`, except on SQLite for a group larger than a page.

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
        through, user, group = _membership()
        if (
            type(self).page_filter is not GroupRoles.page_filter  # a subclass pages its own way
            or connections[through.objects.db].vendor != "sqlite"
        ):
            return self.page_filter(role, window.after)
        key = (GroupRoles, role)
        if key not in window.memo:
            window.memo[key] = self._sqlite_pass(role, window)
        state: _GroupPass = window.memo[key]
        if not state.ranged:
            if state.count <= window.page_size:
                window.holds(state.count)
            members = through.objects.filter(**{group: state.group_id})
            return Q(pk__in=members.values(user))
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
        end = state.last
        if after is None or after < state.last:
            head = members.filter(**{f"{user}__lte": end}).order_by(user).values(user)
            found = head[: window.page_size].aggregate(last=Max(user), count=Count(user))
            window.holds(found["count"])
            if found["count"] == window.page_size:
                end = found["last"]
                window.cap(end)  # the page ends at its page_size-th member
        else:
            window.holds(0)  # past the group's last member the range is empty, and reads nothing
        return Q(pk__in=members.filter(**{f"{user}__lte": end}).values(user))

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


class FieldRoles(BaseRoles):
    """A role is the value of a field on the user model, for example ``user.role``.

    Options: ``field`` (default ``"role"``) and ``roles``, the allowed values.
    Without ``roles``, the field's ``choices`` are used; a field with neither
    accepts any value that at least one user holds.
    """

    def __init__(self, *, field: str = "role", roles: Iterable[str] | None = None) -> None:
        self.field_name = field
        self.roles = frozenset(roles) if roles is not None else None
        self._cache = _CachedExistence()
        self._field()  # a field the user model lacks is a configuration error now

    def _field(self) -> Any:
        user_model = get_user_model()
        try:
            return user_model._meta.get_field(self.field_name)
        except FieldDoesNotExist:
            raise NotifyConfigurationError(
                f"OFFCHAT_NOTIFY['ROLE_RESOLVER_OPTIONS']: the user model "
                f"{user_model._meta.label} has no field {self.field_name!r}."
            ) from None

    def known(self, role: str) -> bool:
        if self.roles is not None:
            return role in self.roles
        field = self._field()
        if field.choices:
            return role in {str(value) for value, _label in field.flatchoices}
        user_model = get_user_model()
        return self._cache(
            role, lambda: user_model._default_manager.filter(**{self.field_name: role}).exists()
        )

    def filter(self, role: str) -> Q:
        return Q(**{self.field_name: role})


class FlagRoles(BaseRoles):
    """Roles from the user model's flags: ``staff`` (``is_staff``), ``superuser``
    and ``admin`` (both ``is_superuser``)."""

    flags = {"staff": "is_staff", "superuser": "is_superuser", "admin": "is_superuser"}

    def known(self, role: str) -> bool:
        return role in self.flags

    def filter(self, role: str) -> Q:
        return Q(**{self.flags[role]: True})

    def unknown_hint(self, role: str) -> str:
        return f"FlagRoles knows {', '.join(sorted(self.flags))}."


def _membership() -> tuple[Any, str, str]:
    """The user-group membership model and its user and group id columns."""
    field = get_user_model()._meta.get_field("groups")
    through = field.remote_field.through
    user = through._meta.get_field(field.m2m_field_name()).attname
    group = through._meta.get_field(field.m2m_reverse_field_name()).attname
    return through, user, group


def _group_id(role: str) -> Any:
    from django.contrib.auth.models import Group

    return Group.objects.filter(name=role).values_list("pk", flat=True).first()


def load_role_resolver(path: str, options: dict[str, Any]) -> BaseRoles:
    try:
        cls = import_string(path)
    except ImportError as e:
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['ROLE_RESOLVER']: could not import {path!r}: {e}"
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, BaseRoles)):
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['ROLE_RESOLVER']: {path!r} is not a subclass of "
            "offchat_notify.roles.BaseRoles."
        )
    try:
        return cls(**options)
    except TypeError as e:
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['ROLE_RESOLVER_OPTIONS']: {path} rejected the options: {e}"
        ) from e


@functools.cache
def get_role_resolver() -> BaseRoles:
    """The configured resolver, built once per process (reset when settings change)."""
    conf = get_settings()
    return load_role_resolver(conf.ROLE_RESOLVER, conf.ROLE_RESOLVER_OPTIONS)
