"""The ChannelSend rows of an Event: written set-based, claimed in batches, marked.

:func:`record` writes one ``pending`` row per (recipient, channel) with one
``INSERT ... SELECT`` per channel from the Event's Notification rows, leaving
out in the same statement the recipients who muted the channel for the verb
(a ``NOT EXISTS`` on the preferences). It ignores rows already there, so it
can run again after a crash. A channel's job then :func:`claim`\\ s batches
of pending rows, sends them and marks each ``sent`` or ``failed``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.utils import timezone

from offchat_notify.models import ChannelSend, Event, Notification, PushSubscription
from offchat_notify.preferences import unmuted

_COLUMNS = (
    "event_id",
    "recipient_id",
    "channel",
    "state",
    "attempts",
    "last_error",
    "provider_message_id",
    "created_at",
)


def _reachable(channel: str) -> Q:
    """Whom ``channel`` can reach at all, as a filter on Notification rows: web
    push only users with a subscription (a browser that turned it on) when the
    Event is delivered; email everyone (a missing address is recorded failed)."""
    if channel == "webpush":
        return Q(Exists(PushSubscription.objects.filter(user_id=OuterRef("recipient_id"))))
    return Q()


def record(event: Event, channels: list[str]) -> int:
    """Write the pending sends of ``event`` on ``channels``; return how many were new."""
    using = router.db_for_write(ChannelSend)
    connection = connections[using]
    quote = connection.ops.quote_name
    added = 0
    for channel in channels:
        rows = (
            Notification.objects.using(using)
            .filter(event_id=event.pk)
            .filter(unmuted(channel, event.verb, user_ref="recipient_id"))
            .filter(_reachable(channel))
            .order_by()
            .values_list(
                "event_id",
                "recipient_id",
                Value(channel),
                Value(ChannelSend.State.PENDING.value),
                Value(0),
                Value(""),
                Value(""),
                Value(timezone.now()),
            )
        )
        select, params = rows.query.sql_with_params()
        sql = (
            f"INSERT INTO {quote(ChannelSend._meta.db_table)} "
            f"({', '.join(quote(c) for c in _COLUMNS)}) {select} "
            "ON CONFLICT DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            added += max(cursor.rowcount, 0)
    return added


def claim(event_id: int, channel: str, size: int, lease: float) -> list[ChannelSend]:
    """Take the next ``size`` pending sends no other job holds, for ``lease`` seconds.

    ``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it, so two
    jobs on one (Event, channel) (a relayed duplicate) take different rows.
    A lease older than ``lease`` belongs to a job that died: its rows are
    taken again.
    """
    using = router.db_for_write(ChannelSend)
    skip_locked = connections[using].features.has_select_for_update_skip_locked
    now = timezone.now()
    with transaction.atomic(using=using):
        free = ChannelSend.objects.filter(
            event_id=event_id, channel=channel, state=ChannelSend.State.PENDING
        ).exclude(claimed_at__gte=now - timedelta(seconds=lease))
        locked = free.select_for_update(skip_locked=skip_locked).order_by("id")
        ids = list(locked.values_list("id", flat=True)[:size])
        ChannelSend.objects.filter(pk__in=ids).update(claimed_at=now, attempts=F("attempts") + 1)
    batch = list(ChannelSend.objects.filter(pk__in=ids).select_related("recipient").order_by("id"))
    if batch:
        event = Event.objects.get(pk=event_id)
        for send in batch:  # every send of a batch has the one Event: read it once
            send.event = event
    return batch


def renew(ids: list[int]) -> None:
    """Renew the lease of these claimed sends (still ``pending``): their job is alive."""
    if ids:
        ChannelSend.objects.filter(pk__in=ids, state=ChannelSend.State.PENDING).update(
            claimed_at=timezone.now()
        )


def mark_sent(sent: dict[int, str]) -> None:
    """Mark these sends ``sent`` ({send id: provider message id}), in one transaction."""
    if not sent:
        return
    using = router.db_for_write(ChannelSend)
    connection = connections[using]
    quote = connection.ops.quote_name
    now = ChannelSend._meta.get_field("sent_at").get_db_prep_save(timezone.now(), connection)
    sql = (
        f"UPDATE {quote(ChannelSend._meta.db_table)} SET {quote('state')} = %s, "
        f"{quote('sent_at')} = %s, {quote('provider_message_id')} = %s WHERE {quote('id')} = %s"
    )
    state = ChannelSend.State.SENT.value
    if connection.vendor == "postgresql":
        # One statement for the batch: the ids and message ids as two arrays.
        table = quote(ChannelSend._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {quote('state')} = %s, {quote('sent_at')} = %s, "
                f"{quote('provider_message_id')} = d.mid FROM unnest(%s::bigint[], %s::text[]) "
                f"AS d(id, mid) WHERE {table}.{quote('id')} = d.id",
                [state, now, list(sent), [mid[:255] for mid in sent.values()]],
            )
        return
    # Elsewhere one prepared statement, executed for each send, in one transaction.
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.executemany(sql, [(state, now, mid[:255], pk) for pk, mid in sent.items()])


def mark_failed(failed: dict[int, str]) -> None:
    """Mark these sends ``failed`` for good ({send id: the error}); never sent again."""
    for pk, error in failed.items():
        ChannelSend.objects.filter(pk=pk).update(state=ChannelSend.State.FAILED, last_error=error)


def release(ids: list[int], error: str, *, max_attempts: int) -> int:
    """Give back the sends of a batch that met a transient error, to be retried.

    Their lease is dropped and the error kept; a send tried ``max_attempts``
    times is marked ``failed``. Returns how many stay pending.
    """
    pending = ChannelSend.objects.filter(pk__in=ids, state=ChannelSend.State.PENDING)
    pending.filter(attempts__gte=max_attempts).update(
        state=ChannelSend.State.FAILED, last_error=f"{error} (after {max_attempts} attempts)"
    )
    return pending.filter(attempts__lt=max_attempts).update(claimed_at=None, last_error=error)


def remaining(event_id: int, channel: str) -> int:
    """How many sends of (Event, channel) are still pending."""
    return ChannelSend.objects.filter(
        event_id=event_id, channel=channel, state=ChannelSend.State.PENDING
    ).count()
