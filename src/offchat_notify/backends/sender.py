"""Removed in 0.3: the background sender moved to
:mod:`offchat_notify.backends.dramatiq.sender`."""

from __future__ import annotations

from offchat_notify._deprecation import moved

__getattr__ = moved(
    __name__,
    dict.fromkeys(
        ("flush", "sender", "BackgroundSender", "MAX_QUEUED", "EXIT_TIMEOUT"),
        "offchat_notify.backends.dramatiq.sender",
    ),
)
