#!/usr/bin/env python
"""The inbox API's queries with 1,000 and with 1,000,000 notifications in the table.

    python benchmarks/inbox_queries.py [--repeats 300] [--sizes 1000,1000000]

Issue #14, item 1: "With 1,000,000 notifications in the table, a page and an
unread count cost about the same as with 1,000." One user (the probe) has the
same inbox at every size: 100 notifications, 40 unread, their ids spread over
the table; the rest belongs to 10,000 other users (10% unread). Each size has a
scratch database of its own (``offchat_bench_inbox_<size>``, created, tagged and
dropped as harness.py does), filled set-based (``INSERT ... SELECT`` over
``generate_series``) and ``VACUUM ANALYZE``d, as autovacuum would have done.

Both sizes are measured in the same ``--repeats`` rounds, each in a shuffled
order of size x variant (a database router sends the ORM's queries to the
size's database), so load that comes and goes on the shared machine weighs on
both alike. The variants, for the probe user, are what the views run:
``first page`` (the page query of ``GET notifications/``: 20 items, with the
Event and actor joined), ``later page`` (the same from the cursor that ends
the 3rd page), ``unread count`` (``GET notifications/unread/``), and ``list
view`` (the whole view: page, items, count, JSON, with a RequestFactory
request). It prints median and p95; for the queries also the server's
``Execution Time`` over 11 ``EXPLAIN ANALYZE`` runs ("(server)") and their
``EXPLAIN (ANALYZE, BUFFERS)``; then the ratios 1,000,000 / 1,000. No Redis,
no broker. About a minute on the 2-core dev machine.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from itertools import product
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402

PROBE_INBOX = 100  # notifications of the probe user, one per Event
PROBE_UNREAD = 40
LATER_PAGE_AFTER = 60  # the later page starts after the 60th newest notification
QUERIES = ("first page", "later page", "unread count")
EXPLAINS = 11  # EXPLAIN ANALYZE runs per query; "(server)" rows: their Execution Time
EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    parser.add_argument("--scratch-db", default="offchat_bench_inbox")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(size % PROBE_INBOX or size < 10 * PROBE_INBOX for size in sizes) or args.users < 200:
        parser.error(f"each size must be a multiple of {PROBE_INBOX}, at least 1000; 200 users")

    with ExitStack() as stack:
        pg = harness.Postgres.from_url(args.database_url)
        databases = {
            f"n{size}": pg.django_database(
                stack.enter_context(harness.scratch_database(pg, f"{args.scratch_db}_{size}"))
            )
            for size in sizes
        }
        harness.configure_django(
            database=databases[f"n{sizes[0]}"],
            redis_url=harness.DEFAULT_REDIS_URL,
            namespace="unused",
            apps=[],
            notify={"BACKEND": "sync"},
            DRAMATIQ_BROKER={
                "BROKER": "dramatiq.brokers.stub.StubBroker",
                "OPTIONS": {},
                "MIDDLEWARE": harness.BROKER_MIDDLEWARE,
            },
            DATABASES={"default": databases[f"n{sizes[0]}"], **databases},
            DATABASE_ROUTERS=[ROUTE],
        )
        from django.core.management import call_command

        probes, facts = {}, {}
        for size in sizes:
            ROUTE.alias = f"n{size}"
            started = time.perf_counter()
            call_command("migrate", database=ROUTE.alias, verbosity=0)
            probes[size] = create_users(args.users)
            facts[size] = fill(ROUTE.alias, size, args.users, probes[size].pk)
            print(f"{size:,} notifications: {facts[size]}; "
                  f"migrated and filled in {time.perf_counter() - started:.1f} s")  # fmt: skip
        results, plans = measure(sizes, probes, args.repeats, random.Random(args.seed))
        for size in sizes:
            print(f"\n## {size:,} notifications ({facts[size]})")
            report_size(results[size], plans[size])
        report_ratios(sizes, results)
    return 0


class Route:
    """A database router: every query to the database of the size being measured."""

    alias = "default"

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self.alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self.alias

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


ROUTE = Route()


def create_users(count: int) -> Any:
    """``count`` active users in one INSERT ... SELECT (in the routed database); return the
    first, the probe."""
    from django.contrib.auth.models import User
    from django.db import connections

    with connections[ROUTE.alias].cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) SELECT '!', false, 'user-' || g, '', '', "
            "'', false, true, now() FROM generate_series(1, %s) g ORDER BY g",
            [count],
        )
    first, last = (
        User.objects.order_by(order).values_list("pk", flat=True)[0] for order in ("pk", "-pk")
    )
    assert last - first + 1 == count, "the scratch database's user ids must be contiguous"
    return User.objects.get(pk=first)


def fill(alias: str, size: int, users: int, probe: int) -> str:
    """In database ``alias``, write ``size`` notifications of ``size / 100`` Events (at
    least ``PROBE_INBOX``), each to the same number of users, in Event order.

    The probe user (id ``probe``, the lowest) gets one Event in every ``events /
    PROBE_INBOX``: its ``PROBE_INBOX`` notifications are spread over the whole table,
    as a real inbox's are. Each other Event goes to a window of the other users that
    moves from one Event to the next; every Event has an actor.
    """
    from django.db import connections

    from offchat_notify.models import Event, Notification

    connection = connections[alias]

    count = max(PROBE_INBOX, size // 100)
    per_event, step = size // count, count // PROBE_INBOX
    events, notifications = Event._meta.db_table, Notification._meta.db_table
    Event.objects.using(alias).bulk_create(
        (
            Event(
                verb="report.filed" if n % 10 == 0 else "message.sent",
                title=f"Message {n}",
                body="Someone wrote in a room you watch.",
                actor_id=probe + 1 + n % (users - 1),
                audience={"role": "admin"},
                state=Event.State.DELIVERED,
                recipient_count=per_event,
            )
            for n in range(count)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        # Recipient k of Event e: the probe (k = 0 of every step-th Event), else the
        # other users probe+1 .. probe+users-1 in a window starting at e * 97. The
        # probe's oldest PROBE_INBOX - PROBE_UNREAD are read; the others' 10% unread.
        cursor.execute(
            f"INSERT INTO {notifications} (event_id, recipient_id, created_at, read_at) "
            "SELECT e.id, r.id, now() - (%(count)s - e.id) * interval '1 minute', "
            "  CASE WHEN r.id <> %(probe)s THEN "
            "         CASE WHEN (e.id + r.id) %% 10 = 0 THEN NULL ELSE now() END "
            "       WHEN e.id > %(count)s - %(unread)s * %(step)s THEN NULL ELSE now() END "
            f"FROM {events} e CROSS JOIN generate_series(0, %(per_event)s - 1) k "
            "CROSS JOIN LATERAL (SELECT CASE WHEN k = 0 AND e.id %% %(step)s = 0 THEN %(probe)s "
            "  ELSE %(probe)s + 1 + (e.id * 97 + k) %% (%(users)s - 1) END AS id) r "
            "ORDER BY e.id, k",
            {
                "count": count,
                "probe": probe,
                "unread": PROBE_UNREAD,
                "step": step,
                "per_event": per_event,
                "users": users,
            },
        )
        cursor.execute(f"VACUUM ANALYZE {notifications}")
        cursor.execute(f"VACUUM ANALYZE {events}")
        cursor.execute("VACUUM ANALYZE auth_user")
        cursor.execute(
            "SELECT count(*), pg_size_pretty(pg_table_size(%s)), "
            "pg_size_pretty(pg_relation_size('offchat_inbox_idx')), "
            "pg_size_pretty(pg_relation_size('offchat_unread_idx')) FROM " + notifications,
            [notifications],
        )
        rows, table, inbox, unread = cursor.fetchone()
    assert rows == size, (rows, size)
    return f"table {table}, offchat_inbox_idx {inbox}, offchat_unread_idx {unread}"


def measure(
    sizes: list[int], probes: dict[int, Any], repeats: int, rng: random.Random
) -> tuple[dict[int, dict[str, list[float]]], dict[int, dict[str, str]]]:
    """Time each variant at each size, interleaved; then EXPLAIN each query at each size."""
    from django.db import connections
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from offchat_notify.inbox import cursor, views

    variants: dict[int, dict[str, Callable[[], Any]]] = {}
    for size in sizes:
        ROUTE.alias, probe = f"n{size}", probes[size]
        ids = list(views.inbox(probe).values_list("id", flat=True))
        assert len(ids) == PROBE_INBOX
        later = cursor.PageRequest(before=ids[LATER_PAGE_AFTER - 1])
        request = RequestFactory().get("/notifications/")
        request.user = probe
        variants[size] = {
            "first page": lambda p=probe: list(views.page_queryset(p, cursor.PageRequest())),
            "later page": lambda p=probe, c=later: list(views.page_queryset(p, c)),
            "unread count": lambda p=probe: views.unread_count(p),
            "list view": lambda r=request: views.notification_list(r),
        }
        assert len(variants[size]["first page"]()) == cursor.DEFAULT_LIMIT + 1
        assert variants[size]["later page"]()[0].pk == ids[LATER_PAGE_AFTER]
        assert variants[size]["unread count"]() == PROBE_UNREAD
    samples = {size: {name: [] for name in variants[size]} for size in sizes}
    order = list(product(sizes, variants[sizes[0]]))
    for round_ in range(20 + repeats):  # 20 warm-up rounds first
        rng.shuffle(order)
        for size, name in order:
            ROUTE.alias = f"n{size}"
            started = time.perf_counter()
            variants[size][name]()
            elapsed = (time.perf_counter() - started) * 1000
            if round_ >= 20:
                samples[size][name].append(elapsed)

    def explain(size: int, name: str) -> str:
        """EXPLAIN (ANALYZE, BUFFERS) of the statement the variant sends, as it sent it."""
        ROUTE.alias = f"n{size}"
        connection = connections[ROUTE.alias]
        with CaptureQueriesContext(connection) as sent:
            variants[size][name]()
        (sql,) = [
            q["sql"] for q in sent.captured_queries if "offchat_notify_notification" in q["sql"]
        ]
        plan = ""
        with connection.cursor() as c:
            for _ in range(EXPLAINS):  # the report takes the median Execution Time
                c.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(row[0] for row in c.fetchall())
                found = EXECUTION.search(plan)
                assert found is not None, plan
                samples[size].setdefault(f"{name} (server)", []).append(float(found.group(1)))
        return plan

    plans = {size: {name: explain(size, name) for name in QUERIES} for size in sizes}
    return samples, plans


def report_size(samples: dict[str, list[float]], plans: dict[str, str]) -> None:
    print("\n| what | median ms | p95 ms |\n|---|---:|---:|")
    for name, values in samples.items():
        print(f"| {name} | {statistics.median(values):.3f} | "
              f"{harness.quantile(values, 0.95):.3f} |")  # fmt: skip
    for name, plan in plans.items():
        print(f"\n{name}: EXPLAIN (ANALYZE, BUFFERS)\n```\n{plan}\n```")


def report_ratios(sizes: list[int], results: dict[int, dict[str, list[float]]]) -> None:
    if len(sizes) < 2:
        return
    small, large = min(sizes), max(sizes)
    print(f"\n## Ratio of the medians, {large:,} / {small:,} notifications\n")
    print(f"| what | {small:,} | {large:,} | ratio |\n|---|---:|---:|---:|")
    for name in results[small]:
        a = statistics.median(results[small][name])
        b = statistics.median(results[large][name])
        print(f"| {name} | {a:.3f} ms | {b:.3f} ms | {b / a:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
