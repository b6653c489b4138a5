"""Signed, expiring unsubscribe tokens for RFC 8058 one-click unsubscribe.

A token names one (user, channel, verb) and is signed with ``SECRET_KEY``
(:class:`django.core.signing.TimestampSigner`, a salt of its own). It is the
only authentication of the one-click ``POST``: whoever holds the link of an
email may mute that verb on that channel for its recipient, and nothing else.
Tokens expire after ``OFFCHAT_NOTIFY["EMAIL_UNSUBSCRIBE_DAYS"]``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

from offchat_notify.conf import get_settings

SALT = "offchat_notify.unsubscribe"
URL_NAME = "offchat_notify_inbox:unsubscribe"


class BadToken(ValueError):
    """A token that is forged, malformed or expired; the message says which."""


@dataclasses.dataclass(frozen=True)
class Unsubscribe:
    user_id: str
    channel: str
    verb: str


def make_token(user_id: Any, channel: str, verb: str) -> str:
    # zlib makes the payload of a usual verb longer, and sign_object then keeps
    # it as it is: compressing is tried for a long verb only. Either way the
    # token reads back the same (read_token).
    payload = {"u": str(user_id), "c": channel, "v": verb}
    return _signer(settings.SECRET_KEY).sign_object(payload, compress=len(verb) > _SHORT)


#: A verb up to this long is signed uncompressed: zlib does not shorten
#: ``{"u":…,"c":…,"v":…}`` with a verb such as ``comment.posted``.
_SHORT = 64


@functools.lru_cache(maxsize=4)
def _signer(key: Any) -> signing.TimestampSigner:
    """The signer of tokens with ``key``, made once (an email batch signs one a message)."""
    return signing.TimestampSigner(key=key, salt=SALT)


def read_token(token: str) -> Unsubscribe:
    """What ``token`` unsubscribes from; :exc:`BadToken` if it is not valid now."""
    signer = signing.TimestampSigner(salt=SALT)
    max_age = get_settings().EMAIL_UNSUBSCRIBE_DAYS * 24 * 3600
    try:
        data = signer.unsign_object(token, max_age=max_age)
    except signing.SignatureExpired:
        raise BadToken("this unsubscribe link has expired") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise BadToken("this unsubscribe link is not valid") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "ucv"):
        raise BadToken("this unsubscribe link is not valid")
    return Unsubscribe(data["u"], data["c"], data["v"])


def url(user_id: Any, channel: str, verb: str) -> str | None:
    """The absolute unsubscribe URL, or None without ``EMAIL_SITE_URL`` or the inbox URLs."""
    base = get_settings().EMAIL_SITE_URL
    if not base:
        return None
    path = _path(get_urlconf() or getattr(settings, "ROOT_URLCONF", None), get_script_prefix())
    if path is None:
        return None
    return base.rstrip("/") + path.replace(_PLACEHOLDER, make_token(user_id, channel, verb))


#: Stands for the token in the reversed URL (a token is base64 and colons: no "!").
_PLACEHOLDER = "!token!"


@functools.lru_cache(maxsize=16)
def _path(urlconf: Any, prefix: str) -> str | None:
    """The unsubscribe URL's path with :data:`_PLACEHOLDER` for the token, reversed
    once per URLconf and script prefix (a batch of emails asks for it each time)."""
    try:
        return reverse(URL_NAME, args=[_PLACEHOLDER], urlconf=urlconf)
    except NoReverseMatch:
        return None
