"""Role resolvers' base classes, and the page a resolver is asked to filter.

A resolver turns a role name into a filter on the user model; it never loads
users. Delivery reads an audience a page of users at a time, in primary-key
order, and asks each role of the audience for its filter in the page through
:meth:`BaseRoles.page`, which returns a :class:`Page`.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from offchat_notify.exceptions import (
    NotifyConfigurationError,
    NotifyDeprecationWarning,
    UnknownRole,
)


@dataclasses.dataclass(frozen=True)
class Window:
    """One page of a pass over an audience, as delivery asks for it.

    - ``after``: the page's exclusive lower bound (``None``: from the start);
    - ``page_size``: the most users the page may hold;
    - ``until``: the pass's inclusive upper bound (``None``: to the end);
    - ``memo``: a dict kept for the whole pass (every page of one delivery of
      a range), for what a resolver learns once per pass rather than once per
      page. Key it by something of your own (the resolver's class, the role).
    """

    after: Any
    page_size: int
    until: Any = None
    memo: dict[Any, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Page:
    """What a filter selects in a :class:`Window`.

    - ``q``: the filter on the user model. It must select every user it means
      with ``window.after < pk <= end``, ``end`` being where the page ends
      once every part of the audience has answered (at most ``upper``);
      outside that range it may select anything;
    - ``upper``: the page ends at this primary key at the latest (``None``: no
      bound). A filter that can stay small only up to some key ends the page
      there; the next page starts after it;
    - ``most``: the filter selects at most this many users in the page
      (``None``: unknown). When every part of the audience says so and together
      they fit in a page, delivery does not look for the page's end.
    """

    q: Q
    upper: Any = None
    most: int | None = None


class BaseRoles:
    """Base class of role resolvers.

    Subclasses implement :meth:`known` (is this a role at all?) and
    :meth:`filter` (the users holding it), and may override :meth:`page` to
    keep each page of a large role cheap. Unknown keyword options are refused
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

    def page(self, role: str, window: Window) -> Page:
        """The holders of ``role`` in one page of a delivery (see :class:`Page`).

        The default is :meth:`filter`, unbounded. Override it when the filter
        is a subquery that would otherwise read the whole role for every page:
        bound the subquery by ``window.after`` (and by ``upper``, if the
        resolver can find its holders in key order), and say how many it
        selects at most. See ``GroupRoles.page``.
        """
        cls = type(self)
        if cls.page_filter is not BaseRoles.page_filter:  # Removed in 0.3
            _deprecated(cls, "page_filter(role, after)")
            return Page(self.page_filter(role, window.after))
        if cls.window_filter is not BaseRoles.window_filter:  # Removed in 0.3
            _deprecated(cls, "window_filter(role, window)")
            legacy = _LegacyWindow(window)
            q = self.window_filter(role, legacy)
            return Page(q, legacy.upper, legacy.most)
        return Page(self.filter(role))

    # Removed in 0.3: the hooks that page() replaces. Overriding them still works.
    def page_filter(self, role: str, after: Any) -> Q:
        """Deprecated: override :meth:`page` instead."""
        return self.filter(role)

    def window_filter(self, role: str, window: Any) -> Q:
        """Deprecated: override :meth:`page` instead."""
        return self.filter(role)

    def validate(self, role: str) -> None:
        """Raise :class:`~offchat_notify.exceptions.UnknownRole` unless ``role`` is known."""
        if not self.known(role):
            raise UnknownRole(
                f"Unknown role {role!r} for {type(self).__name__}. {self.unknown_hint(role)}"
            )

    def unknown_hint(self, role: str) -> str:
        return ""


def _deprecated(cls: type, hook: str) -> None:
    warnings.warn(
        f"{cls.__qualname__} overrides {hook}, which is deprecated and will stop "
        "working in 0.3: override page(role, window) and return a roles.Page.",
        NotifyDeprecationWarning,
        stacklevel=4,
    )


class _LegacyWindow:
    """The mutable window that 0.1's ``window_filter`` hook was given."""

    def __init__(self, window: Window) -> None:
        self.after, self.page_size = window.after, window.page_size
        self.until, self.memo = window.until, window.memo
        self.upper: Any = None
        self.most: int | None = None

    def cap(self, pk: Any) -> None:
        if self.upper is None or pk < self.upper:
            self.upper = pk

    def holds(self, count: int) -> None:
        self.most = count


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
