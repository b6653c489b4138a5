"""Dramatiq actors. ``manage.py rundramatiq`` discovers this module.

Never import it from ``__init__``, ``apps`` or ``models``: ``@dramatiq.actor``
binds to the global broker at import time, and that broker must be the one
django-dramatiq builds from ``DRAMATIQ_BROKER``. The backends import it
lazily, after Django is set up.
"""

from __future__ import annotations

import logging

import dramatiq

from .conf import get_settings
from .delivery import deliver

logger = logging.getLogger(__name__)

#: Actor options. Delivery is idempotent, so retrying is always safe.
DELIVER_OPTIONS = {
    "max_retries": 10,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 60 * 60 * 1000,
}


@dramatiq.actor(
    actor_name="offchat_notify.deliver_event",
    queue_name=get_settings().QUEUE,
    **DELIVER_OPTIONS,
)
def deliver_event(event_id: int) -> None:
    """Deliver one Event. The message carries the Event's id and nothing else."""
    if isinstance(event_id, bool) or not isinstance(event_id, int):
        logger.error(
            "offchat_notify.deliver_event takes an Event id (int), got %r; message dropped.",
            event_id,
        )
        return
    deliver(event_id)
