"""The Dramatiq actors, one per job. :mod:`offchat_notify.tasks` re-exports them,
so ``manage.py rundramatiq`` (which imports each app's ``tasks``) finds them.

Declaring an actor binds it to the global broker, which must be the one
django-dramatiq builds from ``DRAMATIQ_BROKER``: this module is imported only
when the dramatiq or eager backend is built, or by ``rundramatiq``, never at
the import of anything a host project imports. Actor names never change, so
messages in flight survive an upgrade.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from offchat_notify.backends import get_backend
from offchat_notify.backends.base import (
    DELIVER,
    DELIVER_CHANNEL,
    DELIVER_CHUNK,
    RUN_JOB,
    BaseBackend,
)
from offchat_notify.backends.jobs import check_args, run
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import (
    DeliveryError,
    PoisonMessage,
    TransientDeliveryError,
    is_lock_wait,
)

from .options import actor_queue

logger = logging.getLogger(__name__)


class LockWait(TransientDeliveryError, dramatiq.Retry):
    """A delivery that waited too long for SQLite's write lock, retried like any
    transient failure. Delivery has logged it as a WARNING; dramatiq logs a
    :class:`dramatiq.Retry` at no level, where it logs any other exception as an
    ERROR with its traceback. (An actor's ``throws=`` would not retry it at all.)"""


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


def never_retry(retries: int, exception: BaseException) -> bool:
    """Periodic jobs are not retried: the next tick runs them again."""
    return False


#: Actor options. Delivery is idempotent, so retrying is always safe.
DELIVER_OPTIONS: dict[str, Any] = {
    "retry_when": should_retry,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 60 * 60 * 1000,
}

QUEUE = actor_queue()


def _run(job: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``job`` as a worker does; a malformed message is poison, dead-lettered at once."""
    try:
        check_args(job, args, kwargs)
    except PoisonMessage as exc:
        logger.error("%s; rejecting the message.", exc)
        raise
    backend: BaseBackend = get_backend()
    try:
        return run(job, args, enqueue=backend.enqueue)
    except TransientDeliveryError as exc:
        if is_lock_wait(exc):
            raise LockWait(str(exc)) from exc
        raise


def _run_retrying(job: str, args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> Any:
    """:func:`_run`, with any other error (the database, most likely, before the
    job could record anything) turned into one that is retried."""
    try:
        return _run(job, args, kwargs)
    except (DeliveryError, PoisonMessage):
        raise  # recorded and retried if transient; or poison, dead-lettered
    except Exception as exc:
        error = f"{what}: {exc}"
        if is_lock_wait(exc):
            logger.warning("%s (will retry)", error)
            raise LockWait(error) from exc
        raise TransientDeliveryError(error) from exc


@dramatiq.actor(actor_name="offchat_notify.deliver_event", queue_name=QUEUE, **DELIVER_OPTIONS)
def deliver_event(*args: Any, **kwargs: Any) -> None:
    """Deliver one Event. The message carries the Event's id and nothing else.

    A message that is not exactly one integer id, or whose id names no Event,
    is poison: it is logged with the reason and dead-lettered (the broker's
    ``<queue>.XQ``), and never retried.
    """
    if _run(DELIVER, args, kwargs) is None:
        # deliver() has logged it. The database is the source of truth: a
        # message for an Event it does not hold was forged, sent to the wrong
        # database, or outlived its Event; dead-lettered, it can be inspected.
        logger.error("No Event %s in the database; rejecting the message.", args[0])
        raise PoisonMessage(f"No Event with id {args[0]!r}")


@dramatiq.actor(actor_name="offchat_notify.deliver_chunk", queue_name=QUEUE, **DELIVER_OPTIONS)
def deliver_chunk(*args: Any, **kwargs: Any) -> None:
    """Deliver one chunk of a large Event: two ints, the Event id and the chunk index."""
    found = _run_retrying(DELIVER_CHUNK, args, kwargs, f"Event {args[0]} chunk {args[1]}")
    if found is None:
        raise PoisonMessage(f"No chunk {args[1]} of Event {args[0]}")


@dramatiq.actor(
    actor_name="offchat_notify.run_job",
    queue_name=QUEUE,
    retry_when=never_retry,
    time_limit=60 * 60 * 1000,
)
def run_job(*args: Any, **kwargs: Any) -> None:
    """Run one periodic job by name, for ``manage.py notify_scheduler``."""
    _run(RUN_JOB, args, kwargs)


@dramatiq.actor(actor_name="offchat_notify.deliver_channel", queue_name=QUEUE, **DELIVER_OPTIONS)
def deliver_channel(*args: Any, **kwargs: Any) -> None:
    """Send one channel of an Event (emails, web pushes): an Event id and a channel name.

    A transient error (the SMTP server away, a 4xx) is retried with backoff,
    up to ``MAX_ATTEMPTS``; the relay takes over from there.
    """
    found = _run_retrying(DELIVER_CHANNEL, args, kwargs, f"Event {args[0]} {args[1]}")
    if found is None:
        raise PoisonMessage(f"No Event with id {args[0]!r}")


#: The actors by job name.
ACTORS: dict[str, Any] = {
    DELIVER: deliver_event,
    DELIVER_CHUNK: deliver_chunk,
    RUN_JOB: run_job,
    DELIVER_CHANNEL: deliver_channel,
}
