"""Role resolvers: turn a role name into a filter on the user model.

A resolver is chosen by ``OFFCHAT_NOTIFY["ROLE_RESOLVER"]`` (a dotted path)
and built with ``OFFCHAT_NOTIFY["ROLE_RESOLVER_OPTIONS"]`` as keyword
arguments. Resolvers never load users: they return a ``Q`` that the worker
applies, page by page, to the user table.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import Q
from django.utils.module_loading import import_string

from .conf import get_settings
from .exceptions import NotifyConfigurationError, UnknownRole


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


class GroupRoles(BaseRoles):
    """A role is a ``django.contrib.auth`` Group; its holders are the group's members.

    This is the default resolver. ``Audience.role("admin")`` means "members of
    the Group named admin".
    """

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
        from django.contrib.auth.models import Group

        user_model = get_user_model()
        # The group's id, not a join on its name: with groups of very different
        # sizes the planner then knows how large this one is.
        group_id = Group.objects.filter(name=role).values_list("pk", flat=True).first()
        membership = user_model.groups.through.objects.filter(group_id=group_id)
        if after is not None and connections[membership.db].vendor != "sqlite":
            # Bounded here too, or every page re-reads the group from its start
            # (PostgreSQL does not push the outer bound into the subquery).
            # SQLite builds the subquery's list for every statement either way,
            # and the bound only makes that list slower to build there.
            membership = membership.filter(user_id__gt=after)
        return Q(pk__in=membership.values("user_id"))

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
