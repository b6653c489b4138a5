"""The code paths request_path.py times, and the interleaved loop that times them.

Each variant is one request-path call that saves a chat Message:

- ``bare``: the save alone;
- ``floor``: the save, then the Event row written by hand: one raw ``INSERT``
  through the same connection, its SQL compiled once and its values built
  before the clock starts. No validation, no dispatch: the least a request
  that records an Event can cost;
- ``notify``: the save, then ``notify_admins(...)`` on the dramatiq backend,
  with the default dispatch (``inline``: the broker send runs in the
  committing thread) or with ``DISPATCH: "background"``;
- ``loop``: what the library replaces, inline: the save, the admins queried,
  and one notification row created per admin, row by row;
- ``bulk``: the same, with the rows written by one ``bulk_create``.

The inline variants (``loop``, ``bulk``) are slow, so they run in a phase of
their own with fewer iterations, interleaved with bare saves that give them a
baseline from the same phase.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from benchmarks import harness
from benchmarks.components import Probe, notify_probes

VERB = "message.sent"
TEXT = "Hello, is anyone there?"
#: Bare saves per round of the inline phase, the baseline of its ratios.
INLINE_BARE_PER_ROUND = 5

#: SQL statements and Redis commands of one untimed call.
Work = tuple[list[str], list[str]]


@dataclass(eq=False)
class Variant:
    """One timed code path. ``size`` is the number of admins notified; None: no notify."""

    kind: str  # "bare", "floor", "notify", "loop" or "bulk"
    atomic: bool
    size: int | None = None
    dispatch: str = "inline"  # the dramatiq backend's DISPATCH option, for "notify"
    inline_phase: bool = False
    samples: list[float] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)

    @property
    def role(self) -> str | None:
        return None if self.size is None else f"admin-{self.size}"

    @property
    def label(self) -> str:
        if self.kind == "bare":
            return "bare save (baseline of the inline rows)" if self.inline_phase else "bare save"
        if self.kind == "floor":
            return "floor: save + one raw Event INSERT"
        if self.kind == "notify":
            return f"save + notify_admins, {self.size:,} admins, {self.dispatch} dispatch"
        how = "row-by-row create" if self.kind == "loop" else "one bulk_create"
        return f"inline: save + {self.size:,} admins, {how}"

    @property
    def mode(self) -> str:
        return "atomic()" if self.atomic else "autocommit"


def row_fields(message: Any, sender: Any) -> dict[str, Any]:
    """The columns of one inline notification row, but the recipient."""
    from django.contrib.contenttypes.models import ContentType

    return {
        "actor": sender,
        "verb": VERB,
        "title": f"New message from {sender.username}",
        "body": message.text,
        "target_content_type": ContentType.objects.get_for_model(message),
        "target_object_id": str(message.pk),
        "data": {"message_id": message.pk, "sender": sender.username},
    }


def inline_loop(message: Any, sender: Any, role: str) -> None:
    """Query the admins and create one row per admin: the 0.6 s pattern."""
    from django.contrib.auth.models import User

    from benchmarks.chat.models import InlineNotification

    fields = row_fields(message, sender)
    for admin in User.objects.filter(groups__name=role):
        InlineNotification.objects.create(recipient=admin, **fields)


def inline_bulk(message: Any, sender: Any, role: str) -> None:
    """The same rows as :func:`inline_loop`, written by one ``bulk_create``."""
    from django.contrib.auth.models import User

    from benchmarks.chat.models import InlineNotification

    fields = row_fields(message, sender)
    InlineNotification.objects.bulk_create(
        [
            InlineNotification(recipient=admin, **fields)
            for admin in User.objects.filter(groups__name=role)
        ]
    )


def floor_statement(sender: Any, size: int) -> tuple[str, list[Any], int]:
    """The floor's INSERT of one Event row: SQL, values and where the target id goes.

    The values are those ``notify_admins`` writes for a chat message, adapted
    for the database once, here; each floor call copies them and sets the new
    message's id.
    """
    from django.db import connection

    from benchmarks.chat.models import Message
    from offchat_notify.models import Event

    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(Event._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(Event._meta.pk.column)}"
    )
    message = Message.objects.create(sender=sender, text=TEXT)
    event = Event(
        audience={"role": f"admin-{size}"},
        verb=VERB,
        title=f"New message from {sender.username}",
        actor=sender,
        target=message,
    )
    values = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in fields]
    target_at = [f.name for f in fields].index("target_object_id")
    return sql, values, target_at


class Bench:
    def __init__(self, args: argparse.Namespace, redis_client: Any) -> None:
        import dramatiq

        self.args = args
        self.redis = redis_client
        self.broker = dramatiq.get_broker()
        self.rng = random.Random(args.seed)
        self.dispatches = 0  # messages this run sent to the broker
        self.variants = [
            variant
            for atomic in (False, True)
            for variant in (
                Variant("bare", atomic=atomic),
                Variant("floor", atomic=atomic),
                *(
                    Variant("notify", atomic=atomic, size=size, dispatch=dispatch)
                    for dispatch in ("inline", "background")
                    for size in args.sizes
                ),
            )
        ]
        self.inline: list[Variant] = []
        if args.inline_iterations:
            self.inline = [
                Variant(kind, atomic=True, size=size, inline_phase=True)
                for kind, size in (
                    ("bare", None),
                    ("loop", args.inline_admins),
                    ("bulk", args.inline_admins),
                )
            ]
        self.work: dict[Variant, Work] = {}
        self.probes: list[Probe] = []

    @property
    def all_variants(self) -> list[Variant]:
        return self.variants + self.inline

    def bare_for(self, variant: Variant) -> Variant:
        """The bare save of ``variant``'s phase and transaction mode."""
        pool = self.inline if variant.inline_phase else self.variants
        return next(v for v in pool if v.kind == "bare" and v.atomic == variant.atomic)

    def floor_for(self, variant: Variant) -> Variant:
        """The floor (save + raw Event INSERT) of ``variant``'s transaction mode."""
        return next(v for v in self.variants if v.kind == "floor" and v.atomic == variant.atomic)

    # Setup

    def create_users(self) -> None:
        from django.contrib.auth.models import Group, User
        from django.db import connection

        self.sender = User.objects.create(username="sender", password="!")
        membership = User.groups.through
        sizes = {v.size for v in self.all_variants if v.size is not None}
        for size in sorted(sizes):
            group = Group.objects.create(name=f"admin-{size}")
            users = User.objects.bulk_create(
                [User(username=f"admin-{size}-{i}", password="!") for i in range(size)],
                batch_size=2000,
            )
            membership.objects.bulk_create(
                [membership(user_id=u.pk, group_id=group.pk) for u in users], batch_size=5000
            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.floor_insert = floor_statement(self.sender, self.args.sizes[0])

    # The timed path

    def call(self, variant: Variant, observe: Callable[[], Any] = nullcontext) -> float:
        """One request-path call of ``variant``; returns its wall time in seconds.

        ``observe()`` is a context manager entered just around the timed region
        (the work counters of :meth:`count_one`).

        Each variant notifies its own Group (``admin-<size>``), chosen with
        ``override_settings(OFFCHAT_NOTIFY={"ADMIN_ROLE": ...})`` outside the
        timed region. That resets the library's cached backend and role
        resolver, so they are rebuilt and the role's existence check (cached
        30 s in steady state) is warmed before the clock starts. The inline
        variants do not use the library; they query their group directly.
        """
        from django.db import connection, transaction
        from django.test import override_settings

        from benchmarks.chat.models import Message
        from offchat_notify import notify_admins
        from offchat_notify.backends import get_backend
        from offchat_notify.roles import get_role_resolver

        role = variant.role or f"admin-{self.args.sizes[0]}"
        sender = self.sender
        sql, params, target_at = self.floor_insert
        notify_settings = {
            "BACKEND": "dramatiq",
            "ADMIN_ROLE": role,
            "OPTIONS": {"DISPATCH": variant.dispatch},
        }
        with override_settings(OFFCHAT_NOTIFY=notify_settings):
            get_backend()
            get_role_resolver().validate(role)
            block = transaction.atomic() if variant.atomic else nullcontext()
            with observe():
                start = time.perf_counter()
                with block:
                    message = Message.objects.create(sender=sender, text=TEXT)
                    if variant.kind == "floor":
                        values = list(params)
                        values[target_at] = str(message.pk)
                        with connection.cursor() as cursor:
                            cursor.execute(sql, values)
                            cursor.fetchone()
                    elif variant.kind == "notify":
                        notify_admins(
                            VERB,
                            title=f"New message from {sender.username}",
                            actor=sender,
                            target=message,
                        )
                    elif variant.kind == "loop":
                        inline_loop(message, sender, role)
                    elif variant.kind == "bulk":
                        inline_bulk(message, sender, role)
                elapsed = time.perf_counter() - start
        variant.message_ids.append(message.pk)
        if variant.kind == "notify":
            self.dispatched()
        return elapsed

    def round_robin(
        self, items: list[Any], rounds: int, timed: Callable[[Any], float], keep: bool
    ) -> None:
        """``rounds`` rounds; each calls every item once, in a freshly shuffled order."""
        order = list(items)
        for _ in range(rounds):
            self.rng.shuffle(order)
            for item in order:
                elapsed = timed(item)
                if keep:
                    item.samples.append(elapsed)

    def run(self) -> None:
        """Time everything; the results stay on the variants, ``work`` and ``probes``."""
        args = self.args
        self.create_users()
        self.round_robin(self.variants, args.warmup, self.call, keep=False)
        gc.collect()
        gc.freeze()
        self.round_robin(self.variants, args.iterations, self.call, keep=True)
        if not args.no_breakdown:
            self.probes = self.breakdown()
        if self.inline:
            # Last, so the main table and the breakdown are timed before the
            # inline rows (26,000 by default) are written.
            bare, *rows = self.inline
            order = rows + [bare] * INLINE_BARE_PER_ROUND
            self.round_robin(order, args.inline_warmup, self.call, keep=False)
            self.round_robin(order, args.inline_iterations, self.call, keep=True)
        self.work = {variant: self.count_one(variant) for variant in self.all_variants}

    # Work per call and breakdown

    def count_one(self, variant: Variant) -> Work:
        """SQL statements and Redis commands of one call of ``variant`` (untimed)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from offchat_notify.backends.dramatiq import sender

        queries = CaptureQueriesContext(connection)
        commands: list[str] = []

        @contextmanager
        def observe() -> Iterator[None]:
            with queries, harness.counting_redis_commands(self.broker.client) as sent:
                yield
                sender.flush(timeout=30)  # a background send counts too
            commands.extend(sent)

        self.call(variant, observe)
        return [q["sql"] for q in queries.captured_queries], commands

    def breakdown(self) -> list[Probe]:
        """Time the pieces notify_admins() is made of, interleaved like the variants."""
        from django.test import override_settings

        from offchat_notify.roles import get_role_resolver

        role = f"admin-{self.args.sizes[-1]}"
        with override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "ADMIN_ROLE": role}):
            get_role_resolver().validate(role)
            probes = notify_probes(
                sender=self.sender, role=role, verb=VERB, text=TEXT, on_dispatch=self.dispatched
            )
            self.round_robin(probes, self.args.warmup, Probe.time, keep=False)
            self.round_robin(probes, self.args.iterations, Probe.time, keep=True)
        return probes

    def dispatched(self) -> None:
        self.dispatches += 1
