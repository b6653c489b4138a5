"""Claiming an Event for an attempt: mark it ``delivering`` and count the attempt.

On PostgreSQL the claim is one statement (``WITH ... SELECT ... FOR UPDATE``
then ``UPDATE ... FROM ... RETURNING``): a small delivery's round trips are
the claim, its page and its finish. Elsewhere it is a short transaction
(``SELECT ... FOR UPDATE``, then ``UPDATE``). Both count an attempt that was
interrupted (:func:`~.failures.interrupted`) as a failure and give up at
``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field
from django.utils import timezone

from offchat_notify import metrics
from offchat_notify.conf import get_settings
from offchat_notify.models import DeliveryChunk, Event

from .failures import interrupted

logger = logging.getLogger("offchat_notify.delivery")

INTERRUPTED = (
    " was interrupted before it finished (the worker died, or the job hit its time limit)."
)


def claim(event_id: int) -> Event | None:
    """The Event, claimed for an attempt; ``None`` if it does not exist. An Event
    already delivered is returned as it is; one interrupted too often, ``failed``."""
    using = router.db_for_write(Event)
    if connections[using].vendor == "postgresql":
        event = _claim_in_one_statement(event_id, using)
        if event is not None:
            return _report(event)
    with transaction.atomic(using=using):
        event = Event.objects.using(using).select_for_update().filter(pk=event_id).first()
        if event is None:
            logger.warning("Event %s does not exist; nothing to deliver.", event_id)
            return None
        if event.state == Event.State.DELIVERED:
            return event
        now = timezone.now()
        fields = ["state", "attempts", "started_at", "updated_at"]
        event.interrupted = interrupted(event, now)  # type: ignore[attr-defined]
        if event.interrupted:  # type: ignore[attr-defined]
            event.failures += 1
            event.last_error = f"Attempt {event.attempts}{INTERRUPTED}"
            fields += ["failures", "last_error"]
        failed = event.failures >= get_settings().MAX_ATTEMPTS
        event.state = Event.State.FAILED if failed else Event.State.DELIVERING
        event.attempts += 1
        event.started_at = event.updated_at = now
        event.save(update_fields=fields)
    return _report(event)


def _report(event: Event) -> Event:
    if getattr(event, "interrupted", False):
        metrics.failed("transient")
        logger.warning("Event %s: %s", event.pk, event.last_error)
    if event.state == Event.State.FAILED:
        metrics.failed("permanent")
        logger.error("Event %s failed %d times; giving up.", event.pk, event.failures)
    return event


def _claim_in_one_statement(event_id: int, using: str) -> Event | None:
    """PostgreSQL: claim in one statement; ``None`` if no Event was claimed
    (delivered already, or missing: the caller's transaction tells which)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    event, chunk = Event._meta, DeliveryChunk._meta

    def column(name: str) -> str:
        field = event.get_field(name)
        assert isinstance(field, Field)  # a concrete column of Event
        return quote(field.column)

    table = quote(event.db_table)
    state, failures, attempts = column("state"), column("failures"), column("attempts")
    now = timezone.now()
    stale = now - timedelta(seconds=get_settings().STUCK_AFTER)
    sql = (
        f"WITH old AS (SELECT {table}.{column('id')} AS id, ({table}.{state} = %s AND "
        f"{table}.{column('updated_at')} < %s AND NOT EXISTS (SELECT 1 FROM "
        f"{quote(chunk.db_table)} c WHERE c.{quote(DeliveryChunk.event.field.column)} = "
        f"{table}.{column('id')})) AS interrupted FROM {table} WHERE {table}.{column('id')} = %s "
        f"AND {table}.{state} <> %s FOR UPDATE) "
        f"UPDATE {table} SET "
        f"{failures} = {table}.{failures} + old.interrupted::int, "
        f"{column('last_error')} = CASE WHEN old.interrupted THEN CONCAT('Attempt ', "
        f"{table}.{attempts}, %s) ELSE {table}.{column('last_error')} END, "
        f"{state} = CASE WHEN {table}.{failures} + old.interrupted::int >= %s THEN %s ELSE %s "
        f"END, {attempts} = {table}.{attempts} + 1, {column('started_at')} = %s, "
        f"{column('updated_at')} = %s FROM old WHERE {table}.{column('id')} = old.id "
        f"RETURNING {table}.*, old.interrupted"
    )
    params: list[Any] = [
        Event.State.DELIVERING,
        stale,
        event_id,
        Event.State.DELIVERED,
        INTERRUPTED,
        get_settings().MAX_ATTEMPTS,
        Event.State.FAILED,
        Event.State.DELIVERING,
        now,
        now,
    ]
    claimed = list(Event.objects.db_manager(using).raw(sql, params))
    return claimed[0] if claimed else None
