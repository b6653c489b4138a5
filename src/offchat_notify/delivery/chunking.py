"""Parallel fan-out: a large audience split into primary-key ranges, one job each.

Above ``OFFCHAT_NOTIFY["PARALLEL_CHUNK"]`` recipients, :func:`plan` records the
Event's chunks (:class:`~offchat_notify.models.DeliveryChunk`) and enqueues
each as a job of its own; under a worker backend every worker can take one,
so one large Event spreads over all of them. Each chunk writes its range page
by page (set-based, idempotent) and the one that finds no chunk left undone
marks the Event delivered. Re-planning (the relay after a worker died)
re-sends only the chunks not done.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model

from offchat_notify.conf import get_settings
from offchat_notify.models import DeliveryChunk, Event
from offchat_notify.roles import BaseRoles
from offchat_notify.roles.spec import Spec

from .pages import iter_pages

logger = logging.getLogger(__name__)


def recorded(event: Event) -> list[DeliveryChunk]:
    """The chunks an earlier attempt recorded for ``event`` and that are still to
    deliver (the last one even when all are done: running it finishes the Event)."""
    chunks = list(DeliveryChunk.objects.filter(event=event).order_by("index"))
    return [chunk for chunk in chunks if chunk.done_at is None] or chunks[-1:]


def plan(
    event: Event, audience: Spec, resolver: BaseRoles, *, after: Any = None
) -> list[DeliveryChunk]:
    """Record the chunks of ``event``'s audience above ``after`` and return them, if
    there is more than one chunk's worth; else return nothing (deliver it in one job).

    Delivery writes the audience's first page before it plans: an audience that
    fits in a page never costs a planning query.
    """
    size = get_settings().PARALLEL_CHUNK
    if not size:
        return []
    pages = iter_pages(audience, resolver, size, after=after)
    first = next(pages)
    if first[0] is None:
        return []  # the rest fits in one chunk
    found = [first, *pages]
    if len(found) > 1 and not found[-1][1].exists():
        found.pop()  # the audience ended exactly on a chunk boundary
    ends = [last for last, _users in found]
    if len(ends) < 2:
        return []
    ends[-1] = None  # the last chunk runs to the end: users added meanwhile are in it
    starts = [after, *ends[:-1]]
    DeliveryChunk.objects.bulk_create(
        [
            DeliveryChunk(event=event, index=i, lo=_store(lo), hi=_store(hi))
            for i, (lo, hi) in enumerate(zip(starts, ends, strict=True))
        ],
        ignore_conflicts=True,
    )
    chunks = list(DeliveryChunk.objects.filter(event=event).order_by("index"))
    logger.info("Event %s: %d chunks of up to %d recipients.", event.pk, len(chunks), size)
    return [chunk for chunk in chunks if chunk.done_at is None]


def bounds(chunk: DeliveryChunk) -> tuple[Any, Any]:
    """The chunk's range of user primary keys: ``(after, until)``, ``None`` open."""
    return _load(chunk.lo), _load(chunk.hi)


def _store(pk: Any) -> str:
    return "" if pk is None else str(pk)


def _load(value: str) -> Any:
    return None if value == "" else get_user_model()._meta.pk.to_python(value)
