"""Audiences: who an Event is for, as a small JSON spec stored on the Event.

An :class:`Audience` never holds users, only a description of them ("role
admin", "these ids", "staff except 7"). The request validates it and stores
its spec (the grammar is in :mod:`offchat_notify.roles.spec`); the worker
resolves it, a page at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist

from .exceptions import InvalidNotification
from .roles import BaseRoles, spec
from .validation import text

#: The longest role name: what a Group name (and the staging table) holds.
MAX_ROLE_LENGTH = 150


@dataclasses.dataclass(frozen=True)
class Audience:
    """A description of recipients. Build one with the class methods, combine with
    ``|`` (union) and :meth:`exclude`.

    Examples:
        >>> Audience.role("admin").exclude(message.sender_id)
        >>> Audience.users([1, 2, 3]) | Audience.staff()
    """

    spec: dict[str, Any]

    # Constructors

    @classmethod
    def users(cls, ids: Iterable[Any]) -> Audience:
        """These users (instances or primary keys). Unknown ids are skipped at delivery."""
        return cls({"users": spec.to_pks(ids)})

    @classmethod
    def role(cls, name: str) -> Audience:
        """Everyone holding ``name``, as the configured role resolver defines it."""
        if not isinstance(name, str) or not name:
            raise InvalidNotification(f"A role name must be a non-empty string, not {name!r}.")
        if len(name) > MAX_ROLE_LENGTH:
            raise InvalidNotification(
                f"A role name is at most {MAX_ROLE_LENGTH} characters (a Group's name), "
                f"not {len(name)}."
            )
        text("A role name", name)
        return cls({"role": name})

    @classmethod
    def staff(cls) -> Audience:
        """Every user with ``is_staff``."""
        return cls({"staff": True})

    @classmethod
    def superusers(cls) -> Audience:
        """Every user with ``is_superuser``."""
        return cls({"superusers": True})

    # Combinators

    def __or__(self, other: Audience) -> Audience:
        if not isinstance(other, Audience):
            return NotImplemented
        parts = [*self._union_parts(), *other._union_parts()]
        return Audience({"union": parts})

    def _union_parts(self) -> list[dict[str, Any]]:
        return list(self.spec["union"]) if "union" in self.spec else [self.spec]

    def exclude(self, users: Any) -> Audience:
        """This audience without ``users`` (a user, a primary key, or several)."""
        ids = spec.to_pks(users)
        if "exclude" in self.spec:
            ids = sorted(set(ids) | set(self.spec["exclude"]))
            return Audience({"exclude": ids, "from": self.spec["from"]})
        return Audience({"exclude": ids, "from": self.spec})

    # Serialisation

    @classmethod
    def from_spec(cls, value: Any) -> Audience:
        """Rebuild an Audience from a stored spec, refusing anything malformed."""
        return cls(spec.check(value))

    def __str__(self) -> str:
        return spec.describe(self.spec)

    # Resolution

    def validate(self, resolver: BaseRoles) -> None:
        """Check, at ``notify()`` time, that every role and flag named exists."""
        for node in spec.nodes(self.spec):
            if "role" in node:
                resolver.validate(node["role"])
            for flag, field in (("staff", "is_staff"), ("superusers", "is_superuser")):
                if flag in node:
                    _require_field(field, flag)

    def explicit_ids(self) -> set[Any]:
        """The ids named by ``users`` nodes (not by exclusions)."""
        return spec.explicit_ids(self.spec)


def _require_field(field: str, flag: str) -> None:
    user_model = get_user_model()
    try:
        user_model._meta.get_field(field)
    except FieldDoesNotExist:
        raise InvalidNotification(
            f"Audience.{flag}() needs a {field!r} field, and {user_model._meta.label} has none. "
            "Use Audience.role() with a role resolver instead."
        ) from None
