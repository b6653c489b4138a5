"""Role resolvers on the user model's own fields and flags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q

from offchat_notify.exceptions import NotifyConfigurationError

from .base import BaseRoles, _CachedExistence


class FieldRoles(BaseRoles):
    """A role is the value of a field on the user model, for example ``user.role``.

    Options: ``field`` (default ``"role"``) and ``roles``, the allowed values.
    Without ``roles``, the field's ``choices`` are used; a field with neither
    accepts any value that at least one user holds.
    """

    def __init__(self, *, field: str = "role", roles: Iterable[str] | None = None) -> None:
        self.field_name = field
        if isinstance(roles, (str, bytes)) or (
            roles is not None and not all(isinstance(r, str) and r for r in roles)
        ):
            raise NotifyConfigurationError(
                "OFFCHAT_NOTIFY['ROLE_RESOLVER_OPTIONS']['roles'] must be a list of role "
                f'names, not {roles!r}. Write "roles": ["admin"], not "roles": "admin".'
            )
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
