"""Audiences: who an Event is for, as a small JSON spec stored on the Event.

An :class:`Audience` never holds users, only a description of them ("role
admin", "these ids", "staff except 7"). The worker turns it into pages of user
ids with :func:`iter_recipient_ids`; the request only validates it.

Spec grammar (what ``Event.audience`` stores)::

    {"users": [1, 2, 3]}
    {"role": "admin"}
    {"staff": true}
    {"superusers": true}
    {"union": [spec, spec, ...]}
    {"exclude": [4, 5], "from": spec}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Model, Q

from .exceptions import InvalidNotification
from .roles import BaseRoles


def _user_model() -> Any:
    return get_user_model()


def _to_pk(value: Any) -> Any:
    """Normalise a user or a primary key to a JSON-safe primary key value."""
    user_model = _user_model()
    if isinstance(value, Model):
        if not isinstance(value, user_model):
            raise InvalidNotification(
                f"Expected a {user_model._meta.label} or its primary key, got a "
                f"{value._meta.label}."
            )
        value = value.pk
    if value is None or isinstance(value, (bool, float)):
        raise InvalidNotification(f"{value!r} is not a user id.")
    try:
        pk = user_model._meta.pk.to_python(value)
    except (ValidationError, TypeError, ValueError):
        raise InvalidNotification(
            f"{value!r} is not a valid primary key for {user_model._meta.label}."
        ) from None
    return pk if isinstance(pk, int) else str(pk)


def _to_pks(values: Any) -> list[Any]:
    if isinstance(values, (Model, int, str)) or not isinstance(values, Iterable):
        values = [values]
    return sorted({_to_pk(v) for v in values})


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
        return cls({"users": _to_pks(ids)})

    @classmethod
    def role(cls, name: str) -> Audience:
        """Everyone holding ``name``, as the configured role resolver defines it."""
        if not isinstance(name, str) or not name:
            raise InvalidNotification(f"A role name must be a non-empty string, not {name!r}.")
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
        ids = _to_pks(users)
        if "exclude" in self.spec:
            ids = sorted(set(ids) | set(self.spec["exclude"]))
            return Audience({"exclude": ids, "from": self.spec["from"]})
        return Audience({"exclude": ids, "from": self.spec})

    # Serialisation

    @classmethod
    def from_spec(cls, spec: Any) -> Audience:
        """Rebuild an Audience from a stored spec, refusing anything malformed."""
        _check_spec(spec)
        return cls(spec)

    def __str__(self) -> str:
        return _describe(self.spec)

    # Resolution

    def validate(self, resolver: BaseRoles) -> None:
        """Check, at ``notify()`` time, that every role and flag named exists."""
        for node in _nodes(self.spec):
            if "role" in node:
                resolver.validate(node["role"])
            for flag, field in (("staff", "is_staff"), ("superusers", "is_superuser")):
                if flag in node:
                    _require_field(field, flag)

    def explicit_ids(self) -> set[Any]:
        """The ids named by ``users`` nodes (not by exclusions)."""
        return {pk for node in _nodes(self.spec) if "users" in node for pk in node["users"]}


def _nodes(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield spec
    if "union" in spec:
        for part in spec["union"]:
            yield from _nodes(part)
    if "from" in spec:
        yield from _nodes(spec["from"])


def _require_field(field: str, flag: str) -> None:
    user_model = _user_model()
    try:
        user_model._meta.get_field(field)
    except FieldDoesNotExist:
        raise InvalidNotification(
            f"Audience.{flag}() needs a {field!r} field, and {user_model._meta.label} has none. "
            "Use Audience.role() with a role resolver instead."
        ) from None


def _check_spec(spec: Any) -> None:
    if not isinstance(spec, dict) or not spec:
        raise InvalidNotification(f"An audience spec must be a non-empty dict, not {spec!r}.")
    keys = set(spec)
    if keys == {"users"} and isinstance(spec["users"], list):
        return
    if keys == {"role"} and isinstance(spec["role"], str) and spec["role"]:
        return
    if keys in ({"staff"}, {"superusers"}) and spec[next(iter(keys))] is True:
        return
    if keys == {"union"} and isinstance(spec["union"], list) and spec["union"]:
        for part in spec["union"]:
            _check_spec(part)
        return
    if keys == {"exclude", "from"} and isinstance(spec["exclude"], list):
        _check_spec(spec["from"])
        return
    raise InvalidNotification(f"Malformed audience spec: {spec!r}.")


def _describe(spec: dict[str, Any]) -> str:
    if "users" in spec:
        return f"{len(spec['users'])} user(s)"
    if "role" in spec:
        return f"role {spec['role']}"
    if "staff" in spec:
        return "staff"
    if "superusers" in spec:
        return "superusers"
    if "union" in spec:
        return " | ".join(_describe(part) for part in spec["union"])
    return f"{_describe(spec['from'])} except {len(spec['exclude'])} user(s)"


# Paging (used by fanout.iter_pages). Explicit id lists can be long (100,000
# ids); a page query only ever carries the part of each list that can fall
# inside the page, so no query grows past ``page_size`` ids per list, on any
# database.


class Window:
    """One page of a pass over the audience, as the filters built for it see it.

    - ``after``: the page's exclusive lower bound (``None``: from the start);
    - ``page_size``: the most users the page may hold;
    - ``until``: the pass's inclusive upper bound (``None``: to the end);
    - ``upper``: where the page ends at the latest (``None``: not bounded yet),
      lowered by :meth:`cap`. A filter that can only stay small up to some
      primary key caps the page there; the next page starts after it;
    - ``most``: once the audience's filter is built, how many users it can
      select in the page at most (``None``: unknown; see :meth:`holds`);
    - ``memo``: a dict kept for the whole pass (every page of one
      ``offchat_notify.fanout.iter_pages()``), for what a filter needs to
      learn once per pass rather than once per page. Key it by something of
      your own (the resolver's class, the role).
    """

    def __init__(
        self,
        after: Any,
        page_size: int,
        *,
        until: Any = None,
        memo: dict[Any, Any] | None = None,
    ) -> None:
        self.after = after
        self.page_size = page_size
        self.until = until
        self.upper: Any = None  # the page may not go past this pk
        self.memo: dict[Any, Any] = {} if memo is None else memo
        self.most: int | None = None
        self._holds: int | None = None

    def cap(self, pk: Any) -> None:
        """End the page at ``pk`` at the latest."""
        if self.upper is None or pk < self.upper:
            self.upper = pk

    def holds(self, count: int) -> None:
        """Say that the filter being built selects at most ``count`` users in the
        page. When every part of the audience says so and together they fit in
        a page, delivery does not look for the page's end among the users."""
        self._holds = count

    def ids(self, ids: list[Any]) -> list[Any]:
        if self.after is not None:
            ids = [pk for pk in ids if pk > self.after]
        if len(ids) > self.page_size:
            ids = ids[: self.page_size]
            self.cap(ids[-1])
        return ids


def _to_q(spec: dict[str, Any], resolver: BaseRoles, window: Window) -> tuple[Q, int | None]:
    """The spec's filter, and how many users it selects in the page at most (None: unknown)."""
    if "users" in spec:
        ids = window.ids(spec["users"])
        return Q(pk__in=ids), len(ids)
    if "role" in spec:
        window._holds = None
        q = resolver.window_filter(spec["role"], window)
        return q, window._holds
    if "staff" in spec:
        return Q(is_staff=True), None
    if "superusers" in spec:
        return Q(is_superuser=True), None
    if "union" in spec:
        q, most = Q(), 0
        for part in spec["union"]:
            part_q, part_most = _to_q(part, resolver, window)
            q |= part_q
            most = None if most is None or part_most is None else most + part_most
        return q, most
    excluded = window.ids(spec["exclude"])
    q, most = _to_q(spec["from"], resolver, window)
    return q & ~Q(pk__in=excluded), most


def audience_q(audience: Audience, resolver: BaseRoles, window: Window) -> Q:
    """The audience as a filter on the user model, its id lists cut to ``window``;
    sets ``window.most``."""
    q, window.most = _to_q(audience.spec, resolver, window)
    return q


def active_users() -> Any:
    """The users who may receive notifications: all of them, or the active ones."""
    user_model = _user_model()
    manager = user_model._default_manager
    try:
        user_model._meta.get_field("is_active")
    except FieldDoesNotExist:
        return manager.all()
    return manager.filter(is_active=True)
