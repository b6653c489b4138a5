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
from typing import Any

from django.contrib.auth import get_user_model
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
    jobs on one (Event, channel) (a relayed duplicate) take different rows;
    on PostgreSQL the pick and the lease are one ``UPDATE ... RETURNING``.
    A lease older than ``lease`` belongs to a job that died: its rows are
    taken again. Each send comes with its recipient and the Event (read once).
    """
    using = router.db_for_write(ChannelSend)
    connection = connections[using]
    now = timezone.now()
    expired = now - timedelta(seconds=lease)
    if connection.vendor == "postgresql":
        batch = _claim_in_one_statement(event_id, channel, size, now, expired, using)
    else:
        batch = _claim_in_a_transaction(event_id, channel, size, now, expired, using)
    if batch:
        event = Event.objects.using(using).get(pk=event_id)
        users = (
            get_user_model()
            ._default_manager.using(using)
            .in_bulk({send.recipient_id for send in batch})
        )
        batch = [send for send in batch if send.recipient_id in users]  # a user just deleted
        for send in batch:  # every send of a batch has the one Event: read it once
            send.event = event
            send.recipient = users[send.recipient_id]
    return batch


#: The fields of a claimed send that a sender reads.
_CLAIMED_FIELDS = ("id", "event", "recipient", "channel", "state", "attempts")


def _claim_in_one_statement(
    event_id: int, channel: str, size: int, now: Any, expired: Any, using: str
) -> list[ChannelSend]:
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(ChannelSend._meta.db_table)
    # What the senders read; the rest (timestamps, errors) is deferred, as .only() would.
    fields = [f for f in ChannelSend._meta.concrete_fields if f.name in _CLAIMED_FIELDS]
    columns = ", ".join(f"{table}.{quote(f.column)}" for f in fields)
    stamp = ChannelSend._meta.get_field("claimed_at")
    sql = (
        f"WITH picked AS (SELECT {quote('id')} FROM {table} "
        f"WHERE {quote('event_id')} = %s AND {quote('channel')} = %s AND {quote('state')} = %s "
        f"AND ({quote('claimed_at')} IS NULL OR {quote('claimed_at')} < %s) "
        f"ORDER BY {quote('id')} LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"UPDATE {table} SET {quote('claimed_at')} = %s, "
        f"{quote('attempts')} = {table}.{quote('attempts')} + 1 "
        f"FROM picked WHERE {table}.{quote('id')} = picked.{quote('id')} RETURNING {columns}"
    )
    params = [
        event_id,
        channel,
        ChannelSend.State.PENDING.value,
        stamp.get_db_prep_value(expired, connection),
        size,
        stamp.get_db_prep_value(now, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # What a queryset would convert (nothing on PostgreSQL today), worked out once.
    table_name = ChannelSend._meta.db_table
    columns_of = [field.get_col(table_name) for field in fields]
    converters = [
        (i, convert, col)
        for i, col in enumerate(columns_of)
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection)
    ]
    names = [f.attname for f in fields]
    batch = []
    for row in sorted(rows, key=lambda r: r[0]):
        values = list(row)
        for i, convert, col in converters:
            values[i] = convert(values[i], col, connection)
        batch.append(ChannelSend.from_db(using, names, values))
    return batch


def _claim_in_a_transaction(
    event_id: int, channel: str, size: int, now: Any, expired: Any, using: str
) -> list[ChannelSend]:
    skip_locked = connections[using].features.has_select_for_update_skip_locked
    with transaction.atomic(using=using):
        free = (
            ChannelSend.objects.using(using)
            .filter(event_id=event_id, channel=channel, state=ChannelSend.State.PENDING)
            .exclude(claimed_at__gte=expired)
        )
        locked = free.select_for_update(skip_locked=skip_locked).order_by("id")
        ids = list(locked.values_list("id", flat=True)[:size])
        ChannelSend.objects.using(using).filter(pk__in=ids).update(
            claimed_at=now, attempts=F("attempts") + 1
        )
    return list(ChannelSend.objects.using(using).filter(pk__in=ids).order_by("id"))


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
