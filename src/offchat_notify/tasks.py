"""The Dramatiq actors, where ``manage.py rundramatiq`` looks for them (``<app>.tasks``).

They are defined in :mod:`offchat_notify.backends.dramatiq.actors`. Never
import this module from a host project's models or settings: importing it
declares the actors on the global broker, which must be the one
django-dramatiq builds from ``DRAMATIQ_BROKER``.
"""

from __future__ import annotations

from .backends.dramatiq.actors import (
    ACTORS,
    deliver_channel,
    deliver_chunk,
    deliver_event,
    never_retry,
    run_job,
    should_retry,
)

__all__ = [
    "ACTORS",
    "deliver_channel",
    "deliver_chunk",
    "deliver_event",
    "never_retry",
    "run_job",
    "should_retry",
]
