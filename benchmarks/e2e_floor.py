#!/usr/bin/env python
"""The machine's floor under end_to_end.py's figures, interleaved in one process.

    python benchmarks/e2e_floor.py [--repeats 15]

Issue #13's goal for end to end is "the limit of the machine": one
``INSERT ... SELECT`` of the rows plus one network hop. This times, at 10,
1,000 and 10,000 admins, in a shuffled order each round:

* ``floor write``: one raw ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` of
  the narrow rows into ``chat.CeilingNotification`` (the Notification table's
  columns, unique constraint and indexes), autocommit: the rows' write and
  commit, nothing else;
* ``library delivery``: the commit of a message whose ``notify_admins()`` ran
  on the ``sync`` backend, which delivers on commit in this process: the
  commit, then every statement of the worker's delivery, without the broker;
* ``redis hop``: an ``LPUSH`` from this thread to a ``BLPOP`` waiting in
  another thread on its own connection (the transport under the broker hop).

Scratch database ``offchat_bench_e2e_floor``; Redis keys under
``offchat-bench-floor-<pid>:``. Prints a markdown table (median, p95).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, services  # noqa: E402
from benchmarks.variants import TEXT, VERB  # noqa: E402

SIZES = (10, 1000, 10000)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=harness.DEFAULT_REDIS_URL)
    args = parser.parse_args()
    name = f"offchat-bench-floor-{os.getpid()}"
    rng = random.Random(1)
    with ExitStack() as stack:
        pg = harness.Postgres.from_url(args.database_url)
        db = pg.django_database(
            stack.enter_context(harness.scratch_database(pg, "offchat_bench_e2e_floor"))
        )
        client = stack.enter_context(harness.redis_namespace(args.redis_url, name))
        harness.configure_django(
            database=db, redis_url=args.redis_url, namespace=name, apps=services.APPS,
            notify={"BACKEND": "sync"},
        )  # fmt: skip
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.test import override_settings

        from benchmarks.chat.models import CeilingNotification, Message
        from benchmarks.fanout_job import audience_sql
        from offchat_notify import notify_admins
        from offchat_notify.roles import get_role_resolver

        call_command("migrate", verbosity=0)
        services.populate({f"admin-{s}": s for s in SIZES})
        sender = User.objects.create(username="sender", password="!")
        table = CeilingNotification._meta.db_table

        key = f"{name}:hop"
        got = threading.Event()
        stop = False
        import redis

        listener = redis.Redis.from_url(args.redis_url)

        def listen() -> None:
            while not stop:
                if listener.blpop([key], timeout=1):
                    got.set()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()

        def floor(size: int, object_id: int) -> float:
            with connection.cursor() as cursor:
                t = time.perf_counter()
                cursor.execute(
                    f"INSERT INTO {table} (event_id, recipient_id) {audience_sql(connection)} "
                    "ON CONFLICT DO NOTHING",
                    [object_id, f"admin-{size}"],
                )
                return time.perf_counter() - t

        def library(size: int) -> float:
            role = f"admin-{size}"
            conf = {**settings.OFFCHAT_NOTIFY, "ADMIN_ROLE": role}
            with override_settings(OFFCHAT_NOTIFY=conf):
                get_role_resolver().validate(role)
                with transaction.atomic():
                    message = Message.objects.create(sender=sender, text=TEXT)
                    notify_admins(VERB, title="New message", actor=sender, target=message)
                    t = time.perf_counter()
                return time.perf_counter() - t

        def hop() -> float:
            got.clear()
            time.sleep(0.05)  # the listener is blocked in BLPOP
            t = time.perf_counter()
            client.lpush(key, b"x")
            got.wait(5)
            return time.perf_counter() - t

        samples: dict[str, list[float]] = {}
        object_id = 1
        for i in range(args.repeats + 1):
            jobs = [("floor write", s) for s in SIZES] + [("library delivery", s) for s in SIZES]
            jobs.append(("redis hop", 0))
            rng.shuffle(jobs)
            for what, size in jobs:
                if what == "floor write":
                    object_id += 1
                    value = floor(size, object_id)
                elif what == "library delivery":
                    value = library(size)
                else:
                    value = hop()
                if i:  # round 0 warms up
                    samples.setdefault(f"{what}|{size}", []).append(value * 1000)
        stop = True
        print(f"load average {os.getloadavg()}")
        print("| what | admins | n | median ms | p95 ms |")
        print("|---|---:|---:|---:|---:|")
        for k, v in samples.items():
            what, size = k.split("|")
            print(
                f"| {what} | {int(size):,} | {len(v)} | {statistics.median(v):.2f} | "
                f"{harness.quantile(v, 0.95):.2f} |"
            )
        for s in SIZES:
            lib = statistics.median(samples[f"library delivery|{s}"])
            fl = statistics.median(samples[f"floor write|{s}"])
            print(f"{s:,}: library delivery / floor write = {lib / fl:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
