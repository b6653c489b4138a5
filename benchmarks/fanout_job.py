"""One fan-out run in a fresh process, so its peak RSS is its own. Started by fanout.py.

    python -m benchmarks.fanout_job METHOD ROLE OBJECT_ID

with the run's settings in ``$OFFCHAT_BENCH_SETTINGS`` (services.child_env).
Prints one JSON line: the rows written, the wall time of the write, the RSS
before it and the process's peak RSS. The methods:

- ``offchat``: ``offchat_notify.delivery.deliver(OBJECT_ID)``, an Event of ROLE
  (as a worker runs it, minus the broker); ``listed``: the same, under a
  resolver that lists ids (the job's settings name it);
- ``bulk``: the inline way, the admins' wide rows in one ``bulk_create``
  (variants.inline_bulk) for the chat Message OBJECT_ID, in ``atomic()``;
- ``insert_select``: the ceiling, one raw ``INSERT ... SELECT ... ON CONFLICT
  DO NOTHING`` of the same narrow rows for Event OBJECT_ID into
  ``chat.CeilingNotification``;
- ``copy`` (PostgreSQL): the ceiling by ``COPY``: the rows streamed out of
  one connection (``COPY (SELECT ...) TO STDOUT``) into another
  (``COPY ... FROM STDIN``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def audience_sql(connection: Any) -> str:
    """The SELECT of ``(event id, recipient id)`` rows: active members of the group %s."""
    active = "u.is_active" if connection.vendor == "postgresql" else "u.is_active = 1"
    return (
        "SELECT %s, u.id FROM auth_user u WHERE {active} AND u.id IN (SELECT ug.user_id FROM "
        "auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id WHERE g.name = %s)"
    ).replace("{active}", active)


def prepare(method: str, object_id: int) -> Any:
    """What the timed write needs, loaded before the clock starts."""
    from benchmarks.chat.models import Message

    if method == "bulk":
        return Message.objects.select_related("sender").get(pk=object_id)
    return None


def write(method: str, role: str, object_id: int, loaded: Any) -> None:
    from django.db import connection, transaction

    from benchmarks.chat.models import CeilingNotification
    from benchmarks.variants import inline_bulk
    from offchat_notify.delivery import deliver

    table = CeilingNotification._meta.db_table
    if method in ("offchat", "listed"):
        deliver(object_id)
    elif method == "bulk":
        with transaction.atomic():
            inline_bulk(loaded, loaded.sender, role)
    elif method == "insert_select":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (event_id, recipient_id) {audience_sql(connection)} "
                "ON CONFLICT DO NOTHING",
                [object_id, role],
            )
    elif method == "copy":
        copy_rows(connection, table, object_id, role)
    else:
        raise SystemExit(f"unknown method {method!r}")


def count(method: str, object_id: int) -> int:
    """The rows the write left, counted after the clock stopped."""
    from benchmarks.chat.models import CeilingNotification, InlineNotification
    from offchat_notify.models import Event, Notification

    if method in ("offchat", "listed"):
        event = Event.objects.get(pk=object_id)
        assert event.state == Event.State.DELIVERED, (event.state, event.last_error)
        return Notification.objects.filter(event_id=object_id).count()
    if method == "bulk":
        return InlineNotification.objects.filter(target_object_id=str(object_id)).count()
    return CeilingNotification.objects.filter(event_id=object_id).count()


def copy_rows(connection: Any, table: str, event_id: int, role: str) -> None:
    """Stream the rows from a ``COPY ... TO STDOUT`` into a ``COPY ... FROM STDIN``."""
    import psycopg
    from psycopg import sql

    connection.ensure_connection()
    source = connection.connection  # Django's psycopg connection reads,
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as sink:  # a second one writes
        select = sql.SQL(audience_sql(connection).replace("%s", "{}")).format(
            sql.Literal(event_id), sql.Literal(role)
        )
        with (
            source.cursor().copy(sql.SQL("COPY ({}) TO STDOUT").format(select)) as out,
            sink.cursor().copy(f"COPY {table} (event_id, recipient_id) FROM STDIN") as into,
        ):
            for block in out:
                into.write(block)


def main() -> None:
    method, role, object_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from benchmarks import services

    services.configure_from_env()
    from django.db import connection

    connection.ensure_connection()
    loaded = prepare(method, object_id)
    rss_before = services.rss_mb()
    start = time.perf_counter()
    write(method, role, object_id, loaded)
    seconds = time.perf_counter() - start
    rows = count(method, object_id)
    print(
        json.dumps(
            {
                "method": method,
                "rows": rows,
                "seconds": seconds,
                "rss_before_mb": rss_before,
                "peak_rss_mb": services.peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
