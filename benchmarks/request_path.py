#!/usr/bin/env python
"""What notify_admins() adds to the request that saves a chat message.

    python benchmarks/request_path.py [--iterations 300] [--database-url URL] [--redis-url URL]

Times a bare ``Message.objects.create`` against the same save followed by
``notify_admins(...)`` on the dramatiq backend (Redis broker), for 10, 1,000
and 10,000 admins, in autocommit and inside ``transaction.atomic()`` (dispatch
on commit included), interleaved round-robin. In the same run, and with fewer
iterations, it times what the library replaces: the same save with one
notification row per admin written inline, row by row and with one
``bulk_create``. Prints a Markdown report with the DESIGN.md section 8 budget
(median at most 2x the bare save), a breakdown of where the added time goes,
correctness checks and a one-line summary. See benchmarks/README.md.

Modules: variants.py (the timed code paths and the timing loop), report.py
(the tables), checks.py (the correctness checks), components.py (the
breakdown's probes), harness.py (scratch database, Redis namespace, Django).

Exit status: 0 when the run completes (a missed budget is reported, not
fatal); 1 when a correctness check fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=300, help="timed calls per variant (default 300)"
    )
    parser.add_argument(
        "--warmup", type=int, default=30, help="untimed calls per variant first (default 30)"
    )
    parser.add_argument(
        "--sizes",
        default="10,1000,10000",
        help="comma-separated admin counts (default 10,1000,10000)",
    )
    parser.add_argument(
        "--inline-iterations",
        type=int,
        default=10,
        help="timed calls per inline variant, the pattern offchat-notify replaces "
        "(default 10; 0 skips them)",
    )
    parser.add_argument(
        "--inline-warmup",
        type=int,
        default=2,
        help="untimed calls per inline variant first (default 2)",
    )
    parser.add_argument(
        "--inline-admins",
        type=int,
        default=1000,
        help="admins the inline variants write a row for (default 1000)",
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
    if args.inline_iterations < 0 or args.inline_warmup < 0 or args.inline_admins < 1:
        parser.error("need --inline-iterations >= 0, --inline-warmup >= 0 and --inline-admins >= 1")
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

        from benchmarks import checks, report
        from benchmarks.variants import Bench

        call_command("migrate", verbosity=0)
        bench = Bench(args, redis_client)
        bench.run()
        report.print_report(bench)
        ok = checks.check(bench)
        summary = report.summary(bench)
    print(
        f"\nTotal run time {time.perf_counter() - started:.1f} s; scratch database "
        f"{args.scratch_db!r} dropped, Redis keys {args.namespace}:* deleted."
    )
    if summary:
        print(f"\n{summary}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
