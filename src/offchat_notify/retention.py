"""Retention: delete what ``OFFCHAT_NOTIFY["RETENTION_DAYS"]`` says is old enough.

Read notifications older than the limit go first; then delivered Events older
than the limit that have no unread notification left. Both in batches, so a
large backlog never holds long locks or a huge transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta

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
    logger.info(
        "Retention (%d days): deleted %d read notification(s) and %d event(s).",
        days,
        notifications,
        events,
    )
    return notifications, events


def _in_batches(qs: object, batch: int) -> int:
    total = 0
    model = qs.model  # type: ignore[attr-defined]
    while True:
        ids = list(qs.order_by("pk").values_list("pk", flat=True)[:batch])  # type: ignore[attr-defined]
        if not ids:
            return total
        deleted, _ = model.objects.filter(pk__in=ids).delete()
        total += len(ids)
