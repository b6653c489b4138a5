"""The inbox's page cursors, and the checks of the list's query parameters.

A cursor is the id of the last notification of a page, signed with the
project's ``SECRET_KEY`` (:class:`django.core.signing.Signer`, a salt of its
own). Clients pass it back as they got it. The signature makes a cursor the
server did not issue fail with a clear 400 instead of a confusing page; it is
not what keeps inboxes apart: every inbox query is filtered by the logged-in
user, so any cursor, forged or borrowed, only moves the position within the
user's own inbox.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.core import signing
from django.http import QueryDict

#: Notifications per page when ``?limit=`` is not given, and the most a page holds.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: The most ``?verb=`` values one request may filter on.
MAX_VERBS = 20
#: The largest id a PostgreSQL ``bigint`` (``BigAutoField``) holds.
MAX_ID = 2**63 - 1

_SALT = "offchat_notify.inbox.cursor"
_DIGITS = re.compile(r"[0-9]{1,19}")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no", "")


class BadParameter(ValueError):
    """A query parameter the inbox cannot use; the message says what to send instead."""


def encode(last_id: int) -> str:
    """The cursor of the page that follows the notification ``last_id``."""
    return _signer().sign(str(last_id))


def decode(cursor: str) -> int:
    """The notification id ``cursor`` was made from.

    Raises:
        BadParameter: the cursor was not issued by this server (altered, cut, or
            signed with a ``SECRET_KEY`` that is no longer configured).
    """
    try:
        value = _signer().unsign(cursor)
    except signing.BadSignature:
        raise BadParameter(
            "cursor is not valid: pass back the 'next' value of the previous page unchanged, "
            "or leave cursor out to start from the newest notification"
        ) from None
    if not _DIGITS.fullmatch(value) or not 0 < int(value) <= MAX_ID:
        raise BadParameter("cursor is not valid: leave cursor out to start from the newest")
    return int(value)


def _signer() -> signing.Signer:
    # Built per call: SECRET_KEY and SECRET_KEY_FALLBACKS are read when signing,
    # so tests overriding them and key rotation both work.
    return signing.Signer(salt=_SALT)


@dataclass(frozen=True)
class PageRequest:
    """What ``GET notifications/`` asks for, checked."""

    limit: int = DEFAULT_LIMIT
    #: Only notifications older than this id (from the cursor), or all.
    before: int | None = None
    unread_only: bool = False
    verbs: Sequence[str] = ()


def page_request(query: QueryDict) -> PageRequest:
    """Check ``?limit=``, ``?cursor=``, ``?unread=`` and ``?verb=`` (repeatable).

    Unknown parameters are ignored. Raises :exc:`BadParameter` naming the
    parameter, what was wrong and what to send instead.
    """
    limit = DEFAULT_LIMIT
    raw_limit = query.get("limit")
    if raw_limit is not None:
        if not _DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadParameter(
                f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw_limit[:40]!r}; "
                f"leave it out for {DEFAULT_LIMIT}"
            )
        limit = int(raw_limit)
    raw_cursor = query.get("cursor")
    before = decode(raw_cursor) if raw_cursor else None
    return PageRequest(
        limit=limit, before=before, unread_only=flag(query, "unread"), verbs=verbs(query)
    )


def flag(query: QueryDict, name: str) -> bool:
    """``?name=1`` (or ``true``, ``yes``) is on; ``0``, ``false``, ``no`` or empty is off."""
    raw = query.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadParameter(f"{name} must be 1 or 0 (true or false), not {raw[:40]!r}")


def verbs(query: QueryDict) -> tuple[str, ...]:
    """The ``?verb=`` values, empty ones left out: a notification matches any of them."""
    values = tuple(dict.fromkeys(v for v in query.getlist("verb") if v))
    if len(values) > MAX_VERBS:
        raise BadParameter(f"at most {MAX_VERBS} verb values may be given, not {len(values)}")
    too_long = next((v for v in values if len(v) > 255), None)
    if too_long is not None:
        raise BadParameter(f"verb must be at most 255 characters, not {len(too_long)}")
    return values
