"""Removed in 0.3: the dead-lettering Redis broker moved to
:mod:`offchat_notify.backends.dramatiq.broker`."""

from __future__ import annotations

from ._deprecation import moved

__getattr__ = moved(__name__, {"RedisBroker": "offchat_notify.backends.dramatiq.broker"})
