"""Audience specs: their grammar, and their filter on the user model, page by page.

An audience is stored on its Event as a small JSON spec (the request builds
it with :class:`offchat_notify.Audience`; the worker reads it here)::

    {"users": [1, 2, 3]}
    {"role": "admin"}
    {"staff": true}
    {"superusers": true}
    {"union": [spec, spec, ...]}
    {"exclude": [4, 5], "from": spec}

Explicit id lists can be long (100,000 ids); a page's filter only ever
carries the part of each list that can fall inside the page, so no query
grows past ``page_size`` ids per list, on any database.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from itertools import pairwise
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import Model, Q, QuerySet

from offchat_notify.exceptions import InvalidNotification

from .base import BaseRoles, Page, Window

Spec = dict[str, Any]


#: The most user ids one call may name (``Audience.users``, ``exclude``). The
#: ids are stored on the Event row and read by every job of its delivery;
#: for more, use a role (a resolver can list any number: ``ListedRoles``).
MAX_IDS = 100_000


def to_pk(value: Any) -> Any:
    """Normalise a saved user or a primary key to a JSON-safe primary key value.

    Only what names one key exactly is accepted: an ``int`` (not a bool, a
    float or a Decimal, which would be truncated) or a ``str`` for integer
    keys, within the key column's range; the key's own type (a UUID...) or
    its string for other keys.
    """
    user_model = get_user_model()
    field = user_model._meta.pk
    if isinstance(value, Model):
        if not isinstance(value, user_model):
            raise InvalidNotification(
                f"Expected a {user_model._meta.label} or its primary key, got a "
                f"{value._meta.label}."
            )
        if value.pk is None or value._state.adding:
            raise InvalidNotification(f"{value!r} is an unsaved user; save it first.")
        value = value.pk
    if field.get_internal_type() in _INT_FIELDS:
        return _int_pk(value, field)
    if value is None or isinstance(value, (bool, int, float, bytes)):
        raise InvalidNotification(f"{value!r} is not a user id.")
    try:
        pk = field.to_python(value)
    except (ValidationError, TypeError, ValueError):
        raise InvalidNotification(
            f"{value!r} is not a valid primary key for {user_model._meta.label}."
        ) from None
    return str(pk)


_INT_FIELDS = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}


def _int_pk(value: Any, field: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 30:
        value = int(value)
    if type(value) is not int:
        raise InvalidNotification(
            f"{value!r} is not a user id: {field.model._meta.label} has integer keys, so "
            "pass ints (or users)."
        )
    ops = connections[router.db_for_read(field.model)].ops
    low, high = ops.integer_field_range(field.get_internal_type())
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidNotification(
            f"{value} is out of the range of {field.model._meta.label}'s primary key "
            f"({low} to {high})."
        )
    return value


def to_pks(values: Any) -> list[Any]:
    """One user or several (saved instances or primary keys) as a sorted list of
    distinct keys, at most :data:`MAX_IDS`."""
    if isinstance(values, QuerySet):
        raise InvalidNotification(
            "Pass user ids, not a QuerySet (it would be loaded whole into the request): "
            "use Audience.role() for a group of users, or list(qs.values_list('pk', flat=True)) "
            f"for at most {MAX_IDS:,} ids."
        )
    if isinstance(values, (Model, int, str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    pks: set[Any] = set()
    for value in values:
        pks.add(to_pk(value))
        if len(pks) > MAX_IDS:
            raise InvalidNotification(
                f"An audience names at most {MAX_IDS:,} user ids; use a role for more "
                "(a role resolver can list any number of users: roles.ListedRoles)."
            )
    return sorted(pks)


def nodes(spec: Spec) -> Iterator[Spec]:
    """The spec and every spec inside it."""
    yield spec
    if "union" in spec:
        for part in spec["union"]:
            yield from nodes(part)
    if "from" in spec:
        yield from nodes(spec["from"])


def check(spec: Any) -> Spec:
    """Return ``spec`` if it follows the grammar; raise InvalidNotification if not."""
    if not isinstance(spec, dict) or not spec:
        raise InvalidNotification(f"An audience spec must be a non-empty dict, not {spec!r}.")
    keys = set(spec)
    if keys == {"users"} and isinstance(spec["users"], list):
        _check_ids(spec, "users")
        return spec
    if keys == {"role"} and isinstance(spec["role"], str) and spec["role"]:
        return spec
    if keys in ({"staff"}, {"superusers"}) and spec[next(iter(keys))] is True:
        return spec
    if keys == {"union"} and isinstance(spec["union"], list) and spec["union"]:
        for part in spec["union"]:
            check(part)
        return spec
    if keys == {"exclude", "from"} and isinstance(spec["exclude"], list):
        _check_ids(spec, "exclude")
        check(spec["from"])
        return spec
    raise InvalidNotification(f"Malformed audience spec: {spec!r}.")


def _check_ids(spec: Spec, key: str) -> None:
    """Refuse an id list that :func:`_ids` could not bisect: each id an int (not a
    bool) or a non-empty str, all of one type, sorted and distinct."""
    ids = spec[key]

    def refuse(problem: str) -> InvalidNotification:
        shown = ids if len(ids) <= 10 else f"[{', '.join(map(repr, ids[:10]))}, ...]"
        return InvalidNotification(f"Malformed audience spec: {problem} in {key!r}: {shown}.")

    for pk in ids:
        if not (type(pk) is int or (type(pk) is str and pk)):
            raise refuse(f"{pk!r} is not a user id (an int or a non-empty str)")
    if len({type(pk) for pk in ids}) > 1:
        raise refuse("the list mixes ints and strings")
    for before, after in pairwise(ids):
        if before == after:
            raise refuse(f"the list is not distinct ({before!r} twice)")
        if before > after:
            raise refuse(f"the list is not sorted ({before!r} before {after!r})")


def describe(spec: Spec) -> str:
    if "users" in spec:
        return f"{len(spec['users'])} user(s)"
    if "role" in spec:
        return f"role {spec['role']}"
    if "staff" in spec:
        return "staff"
    if "superusers" in spec:
        return "superusers"
    if "union" in spec:
        return " | ".join(describe(part) for part in spec["union"])
    return f"{describe(spec['from'])} except {len(spec['exclude'])} user(s)"


def explicit_ids(spec: Spec) -> set[Any]:
    """The ids named by ``users`` nodes (not by exclusions)."""
    return {pk for node in nodes(spec) if "users" in node for pk in node["users"]}


def roles(spec: Spec) -> list[str]:
    """The roles the spec names, sorted."""
    return sorted({node["role"] for node in nodes(spec) if "role" in node})


def _ids(ids: list[Any], window: Window) -> Page:
    """The part of a sorted id list that can fall in the page, ending the page at
    its ``page_size``-th id."""
    start = 0 if window.after is None else bisect_right(ids, window.after)
    cut = ids[start : start + window.page_size]
    upper = cut[-1] if len(cut) == window.page_size and start + len(cut) < len(ids) else None
    return Page(Q(pk__in=cut), upper, len(cut))


def page(spec: Spec, resolver: BaseRoles, window: Window) -> Page:
    """The spec's filter in one page: the union of its parts' filters, ending where
    the first of them ends, selecting at most the sum of what they select."""
    if "users" in spec:
        return _ids(spec["users"], window)
    if "role" in spec:
        return resolver.page(spec["role"], window)
    if "staff" in spec:
        return Page(Q(is_staff=True))
    if "superusers" in spec:
        return Page(Q(is_superuser=True))
    if "union" in spec:
        pages = [page(part, resolver, window) for part in spec["union"]]
        q = Q()
        for part in pages:
            q |= part.q
        counts = [p.most for p in pages]
        most = None if None in counts else sum(c for c in counts if c is not None)
        return Page(q, _lowest(p.upper for p in pages), most)
    excluded = _ids(spec["exclude"], window)
    base = page(spec["from"], resolver, window)
    return Page(base.q & ~excluded.q, _lowest([base.upper, excluded.upper]), base.most)


def _lowest(uppers: Iterable[Any]) -> Any:
    bounds = [u for u in uppers if u is not None]
    return min(bounds) if bounds else None


def active_users() -> QuerySet[Any]:
    """The users who may receive notifications: all of them, or the active ones."""
    user_model = get_user_model()
    manager = user_model._default_manager
    if any(f.name == "is_active" for f in user_model._meta.get_fields()):
        return manager.filter(is_active=True)
    return manager.all()
