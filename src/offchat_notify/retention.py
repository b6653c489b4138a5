"""Retention: delete what ``OFFCHAT_NOTIFY["RETENTION_DAYS"]`` says is old enough.

Read notifications older than the limit go first; then delivered Events older
than the limit that have no unread notification left; then orphans
(:func:`purge_orphans`). All in batches, so a large backlog never holds long
locks or a huge transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .conf import get_settings
from .models import Event, Notification

logger = logging.getLogger(__name__)

BATCH = 5000


def purge(*, days: int | None = None, batch: int = BATCH) -> tuple[int, int]:
    """Delete old read notifications and finished Events; return how many of each."""
    days = days if days is not None else get_settings().RETENTION_DAYS
    if days is None:
        return (0, 0)
    cutoff = timezone.now() - timedelta(days=days)
    notifications = _in_batches(
        Notification.objects.filter(read_at__isnull=False, created_at__lt=cutoff), batch
    )
    unread = Notification.objects.filter(event=OuterRef("pk"), read_at__isnull=True)
    events = _in_batches(
        Event.objects.filter(state=Event.State.DELIVERED, created_at__lt=cutoff).exclude(
            Exists(unread)
        ),
        batch,
    )
    orphans = purge_orphans(batch=batch)
    logger.info(
        "Retention (%d days): deleted %d read notification(s), %d event(s) and %d "
        "orphaned notification(s).",
        days,
        notifications,
        events,
        orphans,
    )
    return notifications + orphans, events


def purge_orphans(*, batch: int = BATCH) -> int:
    """Delete notifications whose Event or recipient no longer exists; return how many.

    Notification's keys have no database constraint (fan-out writes twice as
    fast without one), so a user or an Event deleted behind the ORM's back
    (raw SQL, another application, or a user deleted while a fan-out was
    writing to them) can leave rows behind. Nobody sees them: inbox queries
    join the user and the Event. :func:`purge` calls this; without
    ``RETENTION_DAYS``, schedule ``offchat_notify.retention.purge_orphans``
    itself.
    """
    events = Event.objects.filter(pk=OuterRef("event_id"))
    users = get_user_model()._base_manager.filter(pk=OuterRef("recipient_id"))
    orphans = Notification.objects.filter(~Exists(events) | ~Exists(users))
    return _in_batches(orphans, batch)


def _in_batches(qs: object, batch: int) -> int:
    total = 0
    model = qs.model  # type: ignore[attr-defined]
    while True:
        ids = list(qs.order_by("pk").values_list("pk", flat=True)[:batch])  # type: ignore[attr-defined]
        if not ids:
            return total
        deleted, _ = model.objects.filter(pk__in=ids).delete()
        total += len(ids)
