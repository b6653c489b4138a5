"""Parallel fan-out: a large audience split into primary-key ranges, one job each.

Above ``OFFCHAT_NOTIFY["PARALLEL_CHUNK"]`` recipients, :func:`plan` records the
Event's chunks (:class:`~offchat_notify.models.DeliveryChunk`) and hands each
to the backend as its own job; under the ``dramatiq`` backend every worker
can take one, so one large Event spreads over all of them. Each chunk writes
its range page by page (set-based, idempotent) and the one that finds no
chunk left undone marks the Event delivered. Re-planning (the relay after a
worker died) re-sends only the chunks not done.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from .audience import Audience
from .backends import get_backend
from .conf import get_settings
from .fanout import iter_pages, write_range
from .models import DeliveryChunk, Event
from .roles import BaseRoles
from .staging import resolver_for

logger = logging.getLogger(__name__)


def plan(event: Event, audience: Audience, resolver: BaseRoles) -> bool:
    """Split ``event`` into chunk jobs if its audience is large; return whether it did."""
    size = get_settings().PARALLEL_CHUNK
    chunks = list(DeliveryChunk.objects.filter(event=event).order_by("index"))
    if not chunks:
        if not size:
            return False
        pages = list(iter_pages(audience, resolver, size))
        if len(pages) > 1 and not pages[-1][1].exists():
            pages.pop()  # the audience ended exactly on a chunk boundary
        bounds = [last for last, _users in pages]
        if len(bounds) < 2:
            return False
        bounds[-1] = None  # the last chunk runs to the end: users added meanwhile are in it
        los = [None, *bounds[:-1]]
        DeliveryChunk.objects.bulk_create(
            [
                DeliveryChunk(event=event, index=i, lo=_store(lo), hi=_store(hi))
                for i, (lo, hi) in enumerate(zip(los, bounds, strict=True))
            ],
            ignore_conflicts=True,
        )
        chunks = list(DeliveryChunk.objects.filter(event=event).order_by("index"))
        logger.info("Event %s: %d chunks of up to %d recipients.", event.pk, len(chunks), size)
    backend = get_backend()
    for chunk in chunks:
        if chunk.done_at is None:
            backend.dispatch_chunk(event.pk, chunk.index)
    return True


def deliver_chunk(event_id: int, index: int) -> bool | None:
    """Write one chunk's rows; return True if this chunk finished its Event.

    Returns None if there is no such chunk (its Event was deleted, or the job
    was forged).
    """
    from .delivery import _failed, finish

    chunk = (
        DeliveryChunk.objects.select_related("event").filter(event_id=event_id, index=index).first()
    )
    if chunk is None:
        logger.warning("Event %s has no chunk %s; nothing to deliver.", event_id, index)
        return None
    event = chunk.event
    if chunk.done_at is None and event.state not in (Event.State.DELIVERED, Event.State.FAILED):
        DeliveryChunk.objects.filter(pk=chunk.pk).update(attempts=chunk.attempts + 1)
        try:
            _write(chunk, Audience.from_spec(event.audience))
        except Exception as exc:
            raise _failed(event, exc, what=f" chunk {index}") from exc
        DeliveryChunk.objects.filter(pk=chunk.pk).update(done_at=timezone.now())
    if DeliveryChunk.objects.filter(event_id=event_id, done_at__isnull=True).exists():
        return False
    finish(Event.objects.get(pk=event_id), Audience.from_spec(event.audience))
    return True


def _write(chunk: DeliveryChunk, audience: Audience) -> None:
    conf = get_settings()
    write_range(
        chunk.event_id,
        audience,
        resolver_for(chunk.event_id),
        page_size=conf.CHUNK_SIZE,
        stuck_after=conf.STUCK_AFTER,
        after=_load(chunk.lo),
        until=_load(chunk.hi),
    )


def _store(pk: Any) -> str:
    return "" if pk is None else str(pk)


def _load(value: str) -> Any:
    return None if value == "" else get_user_model()._meta.pk.to_python(value)
