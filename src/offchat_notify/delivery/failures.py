"""A delivery's failures: recorded on the Event, then raised as transient or permanent."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone

from offchat_notify import metrics
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import (
    DeliveryError,
    InvalidNotification,
    PermanentDeliveryError,
    TransientDeliveryError,
    is_lock_wait,
)
from offchat_notify.models import DeliveryChunk, Event

# The state machine's own logger: failures are part of its story in the logs.
logger = logging.getLogger("offchat_notify.delivery")

#: Failures that retrying cannot mend.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (InvalidNotification, PermanentDeliveryError)

#: The database connection failed (server restarted, connection terminated,
#: network): retrying on a new connection may succeed.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


def interrupted(event: Event, now: Any) -> bool:
    """Whether ``event`` was left by an attempt that never finished: ``delivering``
    with a heartbeat older than ``STUCK_AFTER`` (its worker was killed, ran out
    of memory, or the job hit its time limit).

    An Event delivered in chunks is not: it shows no heartbeat while its chunk
    jobs wait in a queue, and each chunk counts its own attempts instead.
    """
    stale = now - timedelta(seconds=get_settings().STUCK_AFTER)
    return (
        event.state == Event.State.DELIVERING
        and event.updated_at < stale
        and not DeliveryChunk.objects.filter(event_id=event.pk).exists()
    )


def _unclaimed(event_id: int, exc: Exception) -> TransientDeliveryError:
    """The Event could not be claimed for a connection failure; nothing can be recorded."""
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    level = logging.WARNING if is_lock_wait(exc) else logging.ERROR
    logger.log(level, "Could not claim event %s (will retry): %s", event_id, error)
    return TransientDeliveryError(f"Event {event_id}: {error}")


def _failed(event: Event, exc: BaseException, *, what: str = "") -> DeliveryError:
    """Record a failure on the Event; return the error to raise.

    Failures, not attempts, count towards ``MAX_ATTEMPTS``: a delivery that
    was merely sent twice (a relay during a backlog, concurrent workers) costs
    nothing. Used for whole Events and for their chunks alike.
    """
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    failures = event.failures + 1
    permanent = isinstance(exc, PERMANENT_ERRORS) or failures >= get_settings().MAX_ATTEMPTS
    state = Event.State.FAILED if permanent else Event.State.QUEUED
    metrics.failed("permanent" if permanent else "transient")
    logger.log(
        logging.WARNING if is_lock_wait(exc) and not permanent else logging.ERROR,
        "Delivering event %s%s failed (failure %d, %s): %s",
        event.pk,
        what,
        failures,
        "giving up" if permanent else "will retry",
        error,
    )
    try:
        Event.objects.filter(pk=event.pk).exclude(state=Event.State.DELIVERED).update(
            state=state,
            failures=F("failures") + 1,
            last_error=error[:10_000],
            updated_at=timezone.now(),
        )
    except Exception as record_exc:  # the database itself may have failed; the relay sees it
        if is_lock_wait(record_exc):
            logger.warning("Could not record the failure of event %s: %s", event.pk, record_exc)
        else:
            logger.exception("Could not record the failure of event %s.", event.pk)
    cls = PermanentDeliveryError if permanent else TransientDeliveryError
    return cls(f"Event {event.pk}{what}: {error}")
