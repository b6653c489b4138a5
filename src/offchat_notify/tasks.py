"""Dramatiq actors. ``manage.py rundramatiq`` discovers this module.

Never import it from ``__init__``, ``apps`` or ``models``: ``@dramatiq.actor``
binds to the global broker at import time, and that broker must be the one
django-dramatiq builds from ``DRAMATIQ_BROKER``. The backends import it
lazily, after Django is set up.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from . import chunks, scheduler
from .conf import get_settings
from .delivery import deliver
from .exceptions import DeliveryError, PoisonMessage, TransientDeliveryError

logger = logging.getLogger(__name__)


def should_retry(retries: int, exception: BaseException) -> bool:
    """dramatiq's ``retry_when``: retry transient failures only.

    How many times is bounded by the Event (``OFFCHAT_NOTIFY["MAX_ATTEMPTS"]``):
    delivery turns the last failure into a permanent one. Failures that cannot
    count against the Event (the database unreachable before the Event could be
    claimed, a chunk job) are bounded by the message, at the same number; after
    that the message is dead-lettered and the relay, which reads the Event's
    state, sends it again later. Anything else (a poison message, a permanent
    failure) is dead-lettered at once.
    """
    return isinstance(exception, TransientDeliveryError) and retries < get_settings().MAX_ATTEMPTS


#: Actor options. Delivery is idempotent, so retrying is always safe.
DELIVER_OPTIONS: dict[str, Any] = {
    "retry_when": should_retry,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 60 * 60 * 1000,
}


@dramatiq.actor(
    actor_name="offchat_notify.deliver_event",
    queue_name=get_settings().QUEUE,
    **DELIVER_OPTIONS,
)
def deliver_event(*args: Any, **kwargs: Any) -> None:
    """Deliver one Event. The message carries the Event's id and nothing else.

    A message that is not exactly one integer id, or whose id names no Event,
    is poison: it is logged with the reason and dead-lettered (the broker's
    ``<queue>.XQ``), and never retried.
    """
    if kwargs or len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int):
        logger.error(
            "offchat_notify.deliver_event takes one Event id (int), got args=%r kwargs=%r; "
            "rejecting the message.",
            args,
            kwargs,
        )
        raise PoisonMessage(f"Not a delivery job: args={args!r} kwargs={kwargs!r}")
    if deliver(args[0]) is None:
        # deliver() has logged it. The database is the source of truth: a
        # message for an Event it does not hold was forged, sent to the wrong
        # database, or outlived its Event; dead-lettered, it can be inspected.
        logger.error("No Event %s in the database; rejecting the message.", args[0])
        raise PoisonMessage(f"No Event with id {args[0]!r}")


@dramatiq.actor(
    actor_name="offchat_notify.deliver_chunk",
    queue_name=get_settings().QUEUE,
    **DELIVER_OPTIONS,
)
def deliver_chunk(*args: Any, **kwargs: Any) -> None:
    """Deliver one chunk of a large Event: two ints, the Event id and the chunk index."""
    if kwargs or len(args) != 2 or not all(type(a) is int for a in args):
        logger.error(
            "offchat_notify.deliver_chunk takes an Event id and a chunk index (ints), got "
            "args=%r kwargs=%r; rejecting the message.",
            args,
            kwargs,
        )
        raise PoisonMessage(f"Not a chunk job: args={args!r} kwargs={kwargs!r}")
    try:
        found = chunks.deliver_chunk(*args)
    except DeliveryError:
        raise  # recorded on the Event; retried if transient
    except Exception as exc:  # before the chunk could be read: the database, most likely
        raise TransientDeliveryError(f"Event {args[0]} chunk {args[1]}: {exc}") from exc
    if found is None:
        raise PoisonMessage(f"No chunk {args[1]} of Event {args[0]}")


def never_retry(retries: int, exception: BaseException) -> bool:
    """Periodic jobs are not retried: the next tick runs them again."""
    return False


@dramatiq.actor(
    actor_name="offchat_notify.run_job",
    queue_name=get_settings().QUEUE,
    retry_when=never_retry,
    time_limit=60 * 60 * 1000,
)
def run_job(name: str) -> None:
    """Run one periodic job by name, for ``manage.py notify_scheduler``."""
    if not isinstance(name, str):
        raise PoisonMessage(f"Not a job name: {name!r}")
    scheduler.run_job(name)
