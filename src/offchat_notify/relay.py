"""The relay: the database is the source of truth, the broker only a fast path.

An Event that commits is handed to the backend once, on commit. If that hand-off
is lost (the broker was down, the process died right after the commit, Redis
was flushed) or the worker died part-way (SIGKILL, out of memory), the Event is
left ``pending``, ``queued`` or ``delivering`` with an ``updated_at`` that no
longer moves. :func:`relay` finds such Events and hands them to the backend
again; delivery is idempotent, so an Event sent twice is still written once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from . import metrics
from .backends import get_backend
from .backends.base import DELIVER, DELIVER_CHANNEL
from .channels.pacing import lease
from .conf import get_settings
from .models import ChannelSend, DeliveryChunk, Event

logger = logging.getLogger(__name__)


def overdue() -> Q:
    """The Events the relay should send again, as of now."""
    conf = get_settings()
    now = timezone.now()
    waiting = now - timedelta(seconds=conf.RELAY_AFTER)
    stuck = now - timedelta(seconds=conf.STUCK_AFTER)
    return (
        Q(state=Event.State.PENDING, created_at__lt=waiting)
        | Q(state=Event.State.QUEUED, updated_at__lt=waiting)
        | Q(state=Event.State.DELIVERING, updated_at__lt=stuck)
    )


def relay(*, limit: int | None = None) -> list[int]:
    """Send overdue Events to the backend again; return their ids.

    Safe with several relays at once: each claims its batch with
    ``SELECT ... FOR UPDATE SKIP LOCKED`` (where the database has it) and marks
    it ``queued`` before sending, so the others skip it.
    """
    limit = limit or get_settings().RELAY_BATCH
    ids = _claim(Event.objects.filter(overdue()), limit)
    if ids:
        logger.warning("Relay: sending %d overdue event(s) again: %s", len(ids), ids[:20])
        _send(ids)
        metrics.resent(len(ids))
    relay_channels()
    return ids


def relay_channels() -> list[tuple[int, str]]:
    """Start again the channel jobs with overdue pending sends; return their (Event, channel).

    A send is overdue when it was written more than ``RELAY_AFTER`` ago and no
    job holds it, or the job that claimed it has held it past its lease (it
    died), and no job has claimed a batch of its (Event, channel) within the
    lease (one is running). The job was lost: the broker was down, its
    retries ran out, its worker died. Were it still running after all, a
    second job claims other batches, never the same sends.
    """
    now = timezone.now()
    live = now - timedelta(seconds=lease())
    waiting = now - timedelta(seconds=get_settings().RELAY_AFTER)
    overdue_sends = ChannelSend.objects.filter(state=ChannelSend.State.PENDING).filter(
        Q(claimed_at__isnull=True, created_at__lt=waiting) | Q(claimed_at__lt=live)
    )
    pairs = list(
        overdue_sends.values_list("event_id", "channel").order_by("event_id", "channel").distinct()
    )[: get_settings().RELAY_BATCH]
    running = set(
        ChannelSend.objects.filter(
            event_id__in={event_id for event_id, _ in pairs}, claimed_at__gte=live
        )
        .values_list("event_id", "channel")
        .order_by()
        .distinct()
    )
    pairs = [pair for pair in pairs if pair not in running]
    backend = get_backend()
    for n, (event_id, channel) in enumerate(pairs):
        try:
            backend.enqueue(DELIVER_CHANNEL, event_id, channel)
        except Exception as exc:
            logger.error(
                "Relay: the backend refused the %s of event %s (%s); %d wait for the next pass.",
                channel,
                event_id,
                exc,
                len(pairs) - n,
            )
            return pairs[:n]
    if pairs:
        logger.warning(
            "Relay: sending the channels of %d event(s) again: %s", len(pairs), pairs[:20]
        )
    return pairs


def retry(event_ids: Iterable[int]) -> list[int]:
    """Deliver these Events again, whatever their state, with fresh attempts.

    Rows already written are kept; the new delivery only adds what is missing.
    Returns the ids that exist and were not delivered already.
    """
    qs = Event.objects.filter(pk__in=list(event_ids)).exclude(state=Event.State.DELIVERED)
    ids = _claim(qs, None, reset_attempts=True)
    _send(ids)
    return ids


def _claim(qs: object, limit: int | None, *, reset_attempts: bool = False) -> list[int]:
    """Lock a batch of ``qs``, mark it ``queued``, return the ids to send.

    A ``delivering`` Event in the batch was left by an attempt that never
    finished (its heartbeat stopped): that counts as a failure, and an Event
    that reaches ``MAX_ATTEMPTS`` so is marked ``failed`` instead of sent.
    """
    using = router.db_for_write(Event)
    skip_locked = connections[using].features.has_select_for_update_skip_locked
    now = timezone.now()
    with transaction.atomic(using=using):
        locked = qs.select_for_update(skip_locked=skip_locked).order_by("pk")  # type: ignore[attr-defined]
        rows = list(locked.values_list("pk", "state", "failures", "attempts")[:limit])
        if reset_attempts:
            ids = [pk for pk, *_ in rows]
            Event.objects.filter(pk__in=ids).update(
                state=Event.State.QUEUED, updated_at=now, attempts=0, failures=0
            )
            return ids
        delivering = [pk for pk, state, *_ in rows if state == Event.State.DELIVERING]
        # An Event delivered in chunks waits silently for its chunk jobs: not interrupted.
        chunked = set(
            DeliveryChunk.objects.filter(event_id__in=delivering).values_list("event_id", flat=True)
        )
        interrupted = [row for row in rows if row[0] in delivering and row[0] not in chunked]
        given_up = [pk for pk, _s, failures, _a in interrupted if failures + 1 >= _max()]
        for pk, _state, failures, attempts in interrupted:
            Event.objects.filter(pk=pk).update(
                failures=failures + 1,
                last_error=f"Attempt {attempts} was interrupted before it finished (the worker "
                "died, or the job hit its time limit).",
            )
        if given_up:
            Event.objects.filter(pk__in=given_up).update(state=Event.State.FAILED, updated_at=now)
            logger.error("Relay: event(s) %s interrupted too often; marked failed.", given_up)
            metrics.failed("permanent")
        ids = [pk for pk, *_ in rows if pk not in given_up]
        Event.objects.filter(pk__in=ids).update(state=Event.State.QUEUED, updated_at=now)
    return ids


def _max() -> int:
    return get_settings().MAX_ATTEMPTS


def _send(ids: list[int]) -> None:
    backend = get_backend()
    for n, event_id in enumerate(ids):
        try:
            backend.enqueue(DELIVER, event_id)
        except Exception as exc:
            logger.error(
                "Relay: the backend refused event %s (%s); %d event(s) wait for the next pass.",
                event_id,
                exc,
                len(ids) - n,
            )
            return
