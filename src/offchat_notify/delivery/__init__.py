"""Delivery: the one state machine of an Event, for whole Events and their chunks.

Every backend ends here, in a worker or inline. ``deliver(event_id)`` claims
the Event, resolves its audience page by page, writes one Notification per
recipient and records the outcome; a large audience is split into chunks,
each delivered by :func:`deliver_chunk`, the last of which finishes the
Event. It is idempotent: the unique (event, recipient) constraint turns a
second delivery, a retry after a crash, or two workers racing on one Event
into no-ops for the rows already written.

The submodules do the work the state machine orders: :mod:`.pages` finds the
pages, :mod:`.writer` writes them, :mod:`.chunking` plans the chunks and
:mod:`.staging` stages the members of roles that can only be listed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.utils import timezone

from offchat_notify import metrics
from offchat_notify.channels import deliver as channel_jobs
from offchat_notify.channels import sends
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import PermanentDeliveryError
from offchat_notify.models import DeliveryChunk, Event, Notification
from offchat_notify.roles import BaseRoles
from offchat_notify.roles.spec import Spec, active_users, check, explicit_ids

from . import chunking
from .claim import claim
from .failures import (
    CONNECTION_ERRORS,
    PERMANENT_ERRORS,
    _failed,
    _unclaimed,
    interrupted,
)
from .staging import resolver_for, stage, unstage
from .writer import Written, write_range

logger = logging.getLogger(__name__)

__all__ = [
    "CONNECTION_ERRORS",
    "PERMANENT_ERRORS",
    "deliver",
    "deliver_chunk",
    "finish",
    "interrupted",
]

#: How a delivery enqueues the jobs it spawns: ``enqueue("deliver_chunk", event_id, index)``.
Enqueue = Callable[..., None]


def deliver(event_id: int, *, enqueue: Enqueue | None = None) -> Event | None:
    """Deliver the Event ``event_id`` to its audience; return it, or ``None`` if it is gone.

    A large audience is split into chunks, each enqueued with ``enqueue``
    (``backend.enqueue``) as a ``deliver_chunk`` job; without ``enqueue`` they
    are delivered here, one after the other. An Event already delivered is
    left alone. While it runs, the Event's ``updated_at`` moves at least once
    a second: an Event left ``delivering`` with an old ``updated_at`` belongs
    to a worker that died, and the relay sends it again. On an error, the
    error is recorded on the Event and raised as:

    * :class:`~offchat_notify.exceptions.TransientDeliveryError` while the Event
      has attempts left (``MAX_ATTEMPTS``): state ``queued``, to be retried;
    * :class:`~offchat_notify.exceptions.PermanentDeliveryError` when it cannot
      succeed (a malformed Event) or its attempts are used up: state ``failed``.
    """
    try:
        event = claim(event_id)
    except CONNECTION_ERRORS as exc:
        # A connection that died while idle (CONN_MAX_AGE) fails here first, before
        # anything is written or can be recorded: retry on a new connection.
        raise _unclaimed(event_id, exc) from exc
    if event is None:
        return None
    if event.state == Event.State.DELIVERED:
        logger.debug("Event %s is already delivered; nothing to do.", event_id)
        return event
    if event.state == Event.State.FAILED:  # interrupted once too often (see claim)
        raise PermanentDeliveryError(f"Event {event_id}: {event.last_error}")
    try:
        audience = check(event.audience)
        resolver = stage(event.pk, audience)
        chunks = chunking.recorded(event) if event.attempts > 1 else []  # none on a first
        if not chunks:
            written = _write(event.pk, audience, resolver, pages=1)
            if not written.done:
                chunks = chunking.plan(event, audience, resolver, after=written.after)
                if not chunks:
                    rest = _write(event.pk, audience, resolver, after=written.after)
                    written = _add(written, rest)
            if not chunks:
                # A first attempt that met no row already written wrote them all.
                known = written.added if written.clean and event.attempts == 1 else None
                return finish(event, audience, recipients=known, enqueue=enqueue)
    except Exception as exc:
        raise _failed(event, exc) from exc
    except BaseException as exc:  # dramatiq's TimeLimitExceeded, a shutdown: record it, go on
        _failed(event, exc)
        raise
    for chunk in chunks:  # each writes its own range; the last one finishes the Event
        if enqueue is None:
            deliver_chunk(event.pk, chunk.index)
        else:
            enqueue("deliver_chunk", event.pk, chunk.index)
    return event


def _add(first: Written, rest: Written) -> Written:
    return Written(first.added + rest.added, rest.after, rest.done, first.clean and rest.clean)


def deliver_chunk(event_id: int, index: int, *, enqueue: Enqueue | None = None) -> bool | None:
    """Write one chunk's rows; return True if this chunk finished its Event.

    Returns None if there is no such chunk (its Event was deleted, or the job
    was forged).
    """
    chunk = (
        DeliveryChunk.objects.select_related("event").filter(event_id=event_id, index=index).first()
    )
    if chunk is None:
        logger.warning("Event %s has no chunk %s; nothing to deliver.", event_id, index)
        return None
    event = chunk.event
    audience = event.audience
    if chunk.done_at is None and event.state not in (Event.State.DELIVERED, Event.State.FAILED):
        if chunk.attempts >= get_settings().MAX_ATTEMPTS:  # each ran, none finished or failed
            exc = PermanentDeliveryError(
                f"chunk {index} was started {chunk.attempts} times and never finished (its "
                "workers died, or the job hit its time limit)"
            )
            raise _failed(event, exc, what=f" chunk {index}") from exc
        DeliveryChunk.objects.filter(pk=chunk.pk).update(attempts=F("attempts") + 1)
        after, until = chunking.bounds(chunk)
        try:
            _write(event_id, check(audience), resolver_for(event_id), after=after, until=until)
        except Exception as exc:
            raise _failed(event, exc, what=f" chunk {index}") from exc
        except BaseException as exc:
            _failed(event, exc, what=f" chunk {index}")
            raise
        DeliveryChunk.objects.filter(pk=chunk.pk).update(done_at=timezone.now())
    if DeliveryChunk.objects.filter(event_id=event_id, done_at__isnull=True).exists():
        return False
    finish(Event.objects.get(pk=event_id), audience, enqueue=enqueue)
    return True


def finish(
    event: Event,
    audience: Spec,
    *,
    recipients: int | None = None,
    enqueue: Enqueue | None = None,
) -> Event:
    """Count what was written (unless ``recipients`` says) and mark the Event delivered.

    The sends of the Event's other channels are written first (``pending``,
    muted users left out), then handed over as ``deliver_channel`` jobs: to
    ``enqueue``, or run here without it.
    """
    unstage(event.pk)
    channels = channel_jobs.sending(event)
    if channels:  # before "delivered": a crash here is relayed, and writes them again
        sends.record(event, channels)
    if recipients is None:
        recipients = Notification.objects.filter(event_id=event.pk).count()
    skipped = count_skipped(audience)
    now = timezone.now()
    duration_ms = int((now - (event.started_at or now)).total_seconds() * 1000)
    fields = {
        "state": Event.State.DELIVERED,
        "recipient_count": recipients,
        "skipped_count": skipped,
        "delivered_at": now,
        "updated_at": now,
        "duration_ms": duration_ms,
        "last_error": "",
    }
    Event.objects.filter(pk=event.pk).update(**fields)
    for name, value in fields.items():
        setattr(event, name, value)
    metrics.delivered((now - event.created_at).total_seconds())
    logger.info(
        "Delivered event %s (%s) to %d recipient(s) in %d ms.",
        event.pk,
        event.verb,
        recipients,
        duration_ms,
    )
    for channel in channels:
        _hand_off(event.pk, channel, enqueue)
    return event


def _hand_off(event_id: int, channel: str, enqueue: Enqueue | None) -> None:
    """Start a channel's job; never raises: its sends are pending, the relay sends them."""
    try:
        if enqueue is None:
            channel_jobs.deliver_channel(event_id, channel)
        else:
            enqueue(channel_jobs.DELIVER_CHANNEL, event_id, channel)
    except Exception as exc:
        logger.warning(
            "Event %s: the %s channel could not run now (%s); the relay sends it later.",
            event_id,
            channel,
            exc,
        )


def _write(event_id: int, audience: Spec, resolver: BaseRoles, **bounds: Any) -> Written:
    """Insert the Notification rows of one Event (or of one range of its audience)."""
    conf = get_settings()
    return write_range(
        event_id,
        audience,
        resolver,
        page_size=conf.PAGE_SIZE,
        stuck_after=conf.STUCK_AFTER,
        **bounds,
    )


def count_skipped(audience: Spec) -> int:
    """How many explicitly named user ids are not active users."""
    named = sorted(explicit_ids(audience))
    size = get_settings().PAGE_SIZE
    found = 0
    for start in range(0, len(named), size):
        found += active_users().filter(pk__in=named[start : start + size]).count()
    return len(named) - found
