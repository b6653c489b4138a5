#!/usr/bin/env python
"""What notify_admins() adds to the request that saves a chat message.

    python benchmarks/request_path.py [--iterations 300] [--database-url URL] [--redis-url URL]

Times a bare ``Message.objects.create`` against the same save followed by
``notify_admins(...)`` on the dramatiq backend (Redis broker), for 10 and
10,000 admins, in autocommit and inside ``transaction.atomic()`` (dispatch
on commit included), interleaved round-robin. Prints a Markdown report with
the DESIGN.md section 8 budget (median at most 2x the bare save), a breakdown
of where the added time goes, and correctness checks. See benchmarks/README.md.

Exit status: 0 when the run completes (a missed budget is reported, not
fatal); 1 when a correctness check fails.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402
from benchmarks.components import Probe, notify_probes  # noqa: E402

BUDGET = 2.0
VERB = "message.sent"
TEXT = "Hello, is anyone there?"


@dataclass
class Variant:
    """One timed code path. ``size`` is the number of admins notified; None: no notify."""

    atomic: bool
    size: int | None
    samples: list[float] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)

    @property
    def role(self) -> str | None:
        return None if self.size is None else f"admin-{self.size}"

    @property
    def label(self) -> str:
        if self.size is None:
            return "bare save"
        return f"save + notify_admins, {self.size:,} admins"

    @property
    def mode(self) -> str:
        return "atomic()" if self.atomic else "autocommit"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=300, help="timed calls per variant (default 300)"
    )
    parser.add_argument(
        "--warmup", type=int, default=30, help="untimed calls per variant first (default 30)"
    )
    parser.add_argument(
        "--sizes", default="10,10000", help="comma-separated admin counts (default 10,10000)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", harness.DEFAULT_DATABASE_URL),
        help="PostgreSQL server to use, postgres://USER@HOST:PORT/DB; DB is only "
        "used to create and drop the scratch database (default $DATABASE_URL or "
        f"{harness.DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--scratch-db",
        default="offchat_bench",
        help="name of the scratch database created and dropped (default offchat_bench)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", harness.DEFAULT_REDIS_URL),
        help=f"Redis server (default $REDIS_URL or {harness.DEFAULT_REDIS_URL})",
    )
    parser.add_argument(
        "--namespace",
        default=f"offchat-bench-{os.getpid()}",
        help="Redis key prefix of this run, deleted at the end (default offchat-bench-PID)",
    )
    parser.add_argument("--seed", type=int, default=1, help="shuffle and bootstrap seed")
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip the per-component breakdown"
    )
    args = parser.parse_args()
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if args.iterations < 10 or args.warmup < 0 or not args.sizes or min(args.sizes) < 1:
        parser.error("need --iterations >= 10, --warmup >= 0 and positive --sizes")
    return args


def main() -> int:
    args = parse_args()
    # A plain kill should clean up too: turn SIGTERM into SystemExit, which
    # unwinds through the context managers that drop the database and keys.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    pg = harness.Postgres.from_url(args.database_url)
    with (
        harness.scratch_database(pg, args.scratch_db) as dbname,
        harness.redis_namespace(args.redis_url, args.namespace) as redis_client,
    ):
        harness.configure_django(
            database=pg.django_database(dbname),
            redis_url=args.redis_url,
            namespace=args.namespace,
            apps=["benchmarks.chat"],
        )
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        bench = Bench(args, redis_client)
        ok = bench.run()
    print(
        f"\nTotal run time {time.perf_counter() - started:.1f} s; scratch database "
        f"{args.scratch_db!r} dropped, Redis keys {args.namespace}:* deleted."
    )
    return 0 if ok else 1


class Bench:
    def __init__(self, args: argparse.Namespace, redis_client: Any) -> None:
        import dramatiq

        self.args = args
        self.redis = redis_client
        self.broker = dramatiq.get_broker()
        self.rng = random.Random(args.seed)
        self.dispatches = 0  # messages this run sent to the broker
        self.variants = [
            Variant(atomic=atomic, size=size)
            for atomic in (False, True)
            for size in (None, *args.sizes)
        ]

    # Setup

    def create_users(self) -> None:
        from django.contrib.auth.models import Group, User

        self.sender = User.objects.create(username="sender", password="!")
        membership = User.groups.through
        for size in self.args.sizes:
            group = Group.objects.create(name=f"admin-{size}")
            users = User.objects.bulk_create(
                [User(username=f"admin-{size}-{i}", password="!") for i in range(size)],
                batch_size=2000,
            )
            membership.objects.bulk_create(
                [membership(user_id=u.pk, group_id=group.pk) for u in users], batch_size=5000
            )
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    # The timed path

    def call(self, variant: Variant, observe: Callable[[], Any] = nullcontext) -> float:
        """One request-path call of ``variant``; returns its wall time in seconds.

        ``observe()`` is a context manager entered just around the timed region
        (the work counters of :meth:`count_calls`).

        Each variant notifies its own Group (``admin-<size>``), chosen with
        ``override_settings(OFFCHAT_NOTIFY={"ADMIN_ROLE": ...})`` outside the
        timed region. That resets the library's cached backend and role
        resolver, so they are rebuilt and the role's existence check (cached
        30 s in steady state) is warmed before the clock starts.
        """
        from django.db import transaction
        from django.test import override_settings

        from benchmarks.chat.models import Message
        from offchat_notify import notify_admins
        from offchat_notify.backends import get_backend
        from offchat_notify.roles import get_role_resolver

        role = variant.role or f"admin-{self.args.sizes[0]}"
        sender = self.sender
        with override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "ADMIN_ROLE": role}):
            get_backend()
            get_role_resolver().validate(role)
            block = transaction.atomic() if variant.atomic else nullcontext()
            with observe():
                start = time.perf_counter()
                with block:
                    message = Message.objects.create(sender=sender, text=TEXT)
                    if variant.size is not None:
                        notify_admins(
                            VERB,
                            title=f"New message from {sender.username}",
                            actor=sender,
                            target=message,
                        )
                elapsed = time.perf_counter() - start
        variant.message_ids.append(message.pk)
        if variant.size is not None:
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

    def run(self) -> bool:
        self.create_users()
        self.round_robin(self.variants, self.args.warmup, self.call, keep=False)
        gc.collect()
        gc.freeze()
        self.round_robin(self.variants, self.args.iterations, self.call, keep=True)
        counts = self.count_calls()
        probes = [] if self.args.no_breakdown else self.breakdown()
        self.report(counts, probes)
        return self.check(counts)

    # Breakdown

    def count_calls(self) -> dict[int, tuple[list[str], list[str]]]:
        """SQL statements and Redis commands of one call of each variant (untimed)."""
        return {i: self.count_one(variant) for i, variant in enumerate(self.variants)}

    def count_one(self, variant: Variant) -> tuple[list[str], list[str]]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        queries = CaptureQueriesContext(connection)
        commands: list[str] = []

        @contextmanager
        def observe() -> Iterator[None]:
            with queries, harness.counting_redis_commands(self.broker.client) as sent:
                yield
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

    # Report

    def report(self, counts: dict[int, tuple[list[str], list[str]]], probes: list[Probe]) -> None:
        from django.conf import settings

        args = self.args
        print("# offchat-notify: request path of a chat message save\n")
        for name, value in harness.versions(self.redis):
            print(f"- {name}: {value}")
        print(
            f"- backend: dramatiq, RedisBroker namespace `{args.namespace}`, middleware "
            f"{len(settings.DRAMATIQ_BROKER['MIDDLEWARE'])} (as tests/settings.py); no worker "
            "running"
        )
        print(
            f"- {args.iterations} timed calls per variant after {args.warmup} warm-up calls, "
            f"interleaved round-robin in a shuffled order each round (seed {args.seed}); "
            "times are `time.perf_counter` wall time per call, ms"
        )
        print()
        print(
            "| transaction | variant | median ms | p90 ms | p99 ms | ratio to bare "
            "(median) | 95% CI of ratio | budget <= 2x |"
        )
        print("|---|---|---:|---:|---:|---:|---|---|")
        for variant in self.variants:
            bare = self.bare_for(variant)
            s = [x * 1000 for x in variant.samples]
            median = statistics.median(s)
            ratio = median / (statistics.median(bare.samples) * 1000)
            if variant is bare:
                ci, verdict = "", ""
            else:
                low, high = harness.ratio_interval(variant.samples, bare.samples, self.rng)
                ci = f"{low:.2f}-{high:.2f}x"
                verdict = "PASS" if ratio <= BUDGET else "MISS"
            print(
                f"| {variant.mode} | {variant.label} | {median:.3f} | "
                f"{harness.quantile(s, 0.9):.3f} | {harness.quantile(s, 0.99):.3f} | "
                f"{ratio:.2f}x | {ci} | {verdict} |"
            )

        print("\n## Work per call (one extra untimed call of each variant)\n")
        print("| transaction | variant | SQL statements | Redis commands |")
        print("|---|---|---:|---|")
        for i, variant in enumerate(self.variants):
            queries, commands = counts[i]
            print(
                f"| {variant.mode} | {variant.label} | {len(queries)} | "
                f"{len(commands)} {' '.join(commands)} |"
            )
        last = len(self.variants) - 1
        print(f"\nSQL of `{self.variants[last].mode}`, `{self.variants[last].label}`:\n")
        for sql in counts[last][0]:
            print(f"    {sql[:150]}{' ...' if len(sql) > 150 else ''}")

        if probes:
            print("\n## Where the added time goes (components, interleaved like the variants)\n")
            print("| component | median ms | p90 ms |")
            print("|---|---:|---:|")
            for probe in probes:
                s = [x * 1000 for x in probe.samples]
                print(
                    f"| {probe.label} | {statistics.median(s):.3f} | "
                    f"{harness.quantile(s, 0.9):.3f} |"
                )
            print()
            for atomic in (False, True):
                bare = next(v for v in self.variants if v.atomic == atomic and v.size is None)
                for v in self.variants:
                    if v.atomic == atomic and v.size is not None:
                        added = statistics.median(v.samples) - statistics.median(bare.samples)
                        print(
                            f"- {v.mode}, {v.size:,} admins: notify_admins adds "
                            f"{added * 1000:.3f} ms to the median (budget allows "
                            f"{(BUDGET - 1) * statistics.median(bare.samples) * 1000:.3f} ms)"
                        )

    def bare_for(self, variant: Variant) -> Variant:
        return next(v for v in self.variants if v.atomic == variant.atomic and v.size is None)

    # Correctness

    def check(self, counts: dict[int, tuple[list[str], list[str]]]) -> bool:
        """No audience work in the request: one Event per call, no Notification rows."""
        from django.contrib.contenttypes.models import ContentType
        from django.db.models import Count

        from benchmarks.chat.models import Message
        from offchat_notify.models import Event, Notification

        results: list[tuple[bool, str]] = []
        message_type = ContentType.objects.get_for_model(Message)
        for variant in self.variants:
            ids = [str(pk) for pk in variant.message_ids]
            events = Event.objects.filter(
                target_content_type=message_type, target_object_id__in=ids
            )
            per_message = dict(
                events.values_list("target_object_id").annotate(n=Count("id")).order_by()
            )
            name = f"{variant.mode}, {variant.label}"
            if variant.size is None:
                results.append((not per_message, f"{name}: no Event for {len(ids)} calls"))
                continue
            one_each = len(per_message) == len(ids) and set(per_message.values()) == {1}
            results.append(
                (
                    one_each,
                    f"{name}: exactly one Event per call "
                    f"({len(ids)} calls, {sum(per_message.values())} Events)",
                )
            )
            right = events.exclude(audience={"role": variant.role}).count() == 0
            right = right and not events.exclude(state=Event.State.PENDING).exists()
            results.append(
                (
                    right,
                    f"{name}: every Event has audience {{'role': {variant.role!r}}} and is pending",
                )
            )
        notifications = Notification.objects.count()
        results.append(
            (
                notifications == 0,
                f"Notification rows written: {notifications} "
                "(no worker ran, so the request path must write none)",
            )
        )
        for atomic in (False, True):
            sized = [
                (v, counts[i])
                for i, v in enumerate(self.variants)
                if v.atomic == atomic and v.size is not None
            ]
            same = len({(len(q), len(c)) for _v, (q, c) in sized}) == 1
            desc = ", ".join(f"{v.size:,}: {len(q)} SQL + {len(c)} Redis" for v, (q, c) in sized)
            results.append(
                (same, f"{sized[0][0].mode}: same work per call at every audience size ({desc})")
            )
        queue = self.broker.client.hlen(f"{self.args.namespace}:offchat_notify.msgs")
        results.append(
            (
                queue == self.dispatches,
                f"broker holds {queue} messages for "
                f"{self.dispatches} dispatches (each notify reached Redis)",
            )
        )
        print("\n## Correctness\n")
        for ok, text in results:
            print(f"- {'ok' if ok else 'FAILED'}: {text}")
        return all(ok for ok, _text in results)


if __name__ == "__main__":
    sys.exit(main())
