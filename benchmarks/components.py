"""The pieces a notify_admins() call is made of, each timed on its own.

Used by request_path.py's breakdown: when notify_admins() costs more than
the budget allows, these say which call the time goes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Probe:
    """One component; :meth:`time` runs ``fn`` once and returns its wall time in seconds."""

    label: str
    fn: Callable[[], Any]
    samples: list[float] = field(default_factory=list)

    def time(self) -> float:
        start = time.perf_counter()
        self.fn()
        return time.perf_counter() - start


def notify_probes(
    *, sender: Any, role: str, verb: str, text: str, on_dispatch: Callable[[], None]
) -> list[Probe]:
    """Probes for notify_admins(verb, ...) with ADMIN_ROLE ``role``, all in autocommit
    unless labelled ``atomic()``. ``on_dispatch`` is called once per broker message sent."""
    import dramatiq
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.db.models.sql import InsertQuery

    from benchmarks.chat.models import Message
    from offchat_notify import Audience, notify_admins
    from offchat_notify.api import _validated_fields
    from offchat_notify.backends import get_backend
    from offchat_notify.backends.dramatiq.actors import deliver_event
    from offchat_notify.models import Event
    from offchat_notify.roles import get_role_resolver

    broker = dramatiq.get_broker()
    target = Message.objects.create(sender=sender, text=text)
    title = f"New message from {sender.username}"
    check_args: dict[str, Any] = {
        "verb": verb,
        "title": title,
        "body": "",
        "level": "info",
        "actor": sender,
        "target": target,
        "data": None,
    }
    fields = _validated_fields(**check_args)
    event = Event.objects.create(audience={"role": role}, **fields)

    # The INSERT that Event.objects.create sends, compiled once: the difference
    # between the two probes is the ORM's own time.
    insert = InsertQuery(Event)
    columns = [f for f in Event._meta.concrete_fields if not f.primary_key]
    insert.insert_values(columns, [Event(audience={"role": role}, **fields)])
    compiler = insert.get_compiler(connection.alias)
    compiler.returning_fields = [Event._meta.pk]
    ((insert_sql, insert_params),) = compiler.as_sql()

    def select_1() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def raw_event_insert() -> None:
        with connection.cursor() as cursor:
            cursor.execute(insert_sql, insert_params)
            cursor.fetchone()

    def role_check() -> None:
        get_backend()
        Audience.role(role).validate(get_role_resolver())

    def atomic_message() -> None:
        with transaction.atomic():
            Message.objects.create(sender=sender, text=text)

    def atomic_message_event() -> None:
        with transaction.atomic():
            Message.objects.create(sender=sender, text=text)
            Event.objects.create(audience={"role": role}, **fields)

    def send() -> None:
        on_dispatch()
        deliver_event.send(event.pk)

    def notify() -> None:
        on_dispatch()
        notify_admins(verb, title=title, actor=sender, target=target)

    return [
        Probe("PostgreSQL round trip (`SELECT 1`)", select_1),
        Probe("Redis round trip (`PING`)", broker.client.ping),
        Probe(
            "`Message.objects.create` (= bare save)",
            lambda: Message.objects.create(sender=sender, text=text),
        ),
        Probe(
            "notify() field checks (`api._validated_fields`)",
            lambda: _validated_fields(**check_args),
        ),
        Probe("role check, answer cached (`Audience.role(r).validate(resolver)`)", role_check),
        Probe(
            "of which: building `Group.objects.filter(name=r)`, unused",
            lambda: Group.objects.filter(name=role),
        ),
        Probe(
            "`Event.objects.create` with notify()'s fields",
            lambda: Event.objects.create(audience={"role": role}, **fields),
        ),
        Probe("the same INSERT, SQL compiled once (`cursor.execute`)", raw_event_insert),
        Probe("`atomic()`: Message create (BEGIN, INSERT, COMMIT)", atomic_message),
        Probe("`atomic()`: Message + Event create, no dispatch", atomic_message_event),
        Probe(
            "`deliver_event.message(id).encode()` (no I/O)",
            lambda: deliver_event.message(event.pk).encode(),
        ),
        Probe("`deliver_event.send(id)` (= backend.after_commit)", send),
        Probe("`notify_admins(...)` alone (no Message save)", notify),
    ]
