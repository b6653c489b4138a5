"""Per-user preferences: mute a channel for one verb or for every verb.

``mute(user, "email", "comment.posted")`` stops the emails of one verb;
``mute(user, "email")`` stops every email. The inbox is not a channel here:
it always receives. A verb named in ``OFFCHAT_NOTIFY["MANDATORY_VERBS"]``
(a security notice, say) cannot be muted, and a channel-wide mute does not
silence it either.

The channels sending leave muted users out in SQL, with :func:`unmuted`, a
``NOT EXISTS`` on :class:`~offchat_notify.models.Preference`'s unique index;
never a loop over users in Python.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q

from offchat_notify.conf import CHANNEL_NAMES, get_settings
from offchat_notify.exceptions import InvalidNotification
from offchat_notify.models import Preference

__all__ = [
    "CHANNELS",
    "channels_for",
    "is_muted",
    "mandatory_verbs",
    "mute",
    "mutes",
    "unmute",
    "unmuted",
]

#: The channels besides the inbox.
CHANNELS = CHANNEL_NAMES
MAX_VERB = 255


def check_channel(channel: Any) -> str:
    """``channel`` if known; else :exc:`~offchat_notify.InvalidNotification` naming them."""
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise InvalidNotification(
            f"Unknown channel {channel!r}; the channels are {', '.join(map(repr, CHANNELS))}."
        )
    return channel


def channels_for(verb: str, channels: Any = None) -> list[str]:
    """The channels an Event of ``verb`` goes to besides the inbox: ``channels``,
    or with ``None`` the verb's default (``CHANNELS_BY_VERB``, else none).

    Raises :exc:`~offchat_notify.InvalidNotification` for anything but a list
    or tuple of known channels.
    """
    if channels is None:
        return list(get_settings().CHANNELS_BY_VERB.get(verb, []))
    if not isinstance(channels, (list, tuple)):
        raise InvalidNotification(
            f"channels must be a list of channels ({', '.join(map(repr, CHANNELS))}), "
            f"not {type(channels).__name__}."
        )
    found: list[str] = []
    for channel in channels:
        if check_channel(channel) not in found:
            found.append(channel)
    return found


def _check_verb(verb: Any) -> str:
    """``verb`` as stored: "" for every verb (``None``)."""
    if verb is None:
        return ""
    if not isinstance(verb, str) or not verb.strip() or len(verb) > MAX_VERB:
        raise InvalidNotification(
            f"A verb must be a non-empty string of at most {MAX_VERB} characters, or None "
            f"for every verb; got {verb!r}."
        )
    return verb


def mandatory_verbs() -> list[str]:
    """The verbs no one can mute (``MANDATORY_VERBS``)."""
    return list(get_settings().MANDATORY_VERBS)


def mute(user: Any, channel: str, verb: str | None = None) -> None:
    """Stop ``channel`` for ``user``: for ``verb``, or for every verb (``None``).

    Muting twice is harmless. Raises :exc:`~offchat_notify.InvalidNotification` for an unknown
    channel, a malformed verb or a mandatory one.
    """
    check_channel(channel)
    stored = _check_verb(verb)
    if stored in mandatory_verbs():
        raise InvalidNotification(
            f"The verb {stored!r} is mandatory (MANDATORY_VERBS) and cannot be muted."
        )
    Preference.objects.get_or_create(user_id=user.pk, channel=channel, verb=stored)


def unmute(user: Any, channel: str, verb: str | None = None) -> None:
    """Undo :func:`mute` with the same arguments; unmuting what is not muted is harmless.

    ``unmute(user, "email")`` lifts the channel-wide mute only: the verbs
    muted one by one stay muted.
    """
    check_channel(channel)
    Preference.objects.filter(user_id=user.pk, channel=channel, verb=_check_verb(verb)).delete()


def is_muted(user: Any, channel: str, verb: str | None = None) -> bool:
    """Whether ``user`` gets nothing on ``channel`` for ``verb``.

    With ``verb=None``: whether the whole channel is muted. A mandatory verb
    is never muted.
    """
    check_channel(channel)
    stored = _check_verb(verb)
    if stored and stored in mandatory_verbs():
        return False
    verbs = ["", stored] if stored else [""]
    return Preference.objects.filter(user_id=user.pk, channel=channel, verb__in=verbs).exists()


def mutes(user: Any) -> list[dict[str, str | None]]:
    """``user``'s mutes, as ``{"channel": ..., "verb": ... or None}``, ordered."""
    rows = Preference.objects.filter(user_id=user.pk).order_by("channel", "verb")
    return [{"channel": r.channel, "verb": r.verb or None} for r in rows.only("channel", "verb")]


def unmuted(channel: str, verb: str, user_ref: str = "pk") -> Q:
    """A filter on users (or on rows with a user id at ``user_ref``): those who
    have not muted ``channel`` for ``verb``. One ``NOT EXISTS`` subquery."""
    check_channel(channel)
    if verb in mandatory_verbs():
        return Q()
    muted = Preference.objects.filter(
        user_id=OuterRef(user_ref), channel=channel, verb__in=["", verb]
    )
    return ~Q(Exists(muted))
