"""All of run_all.py's measurements on ONE database, in a process of their own.

    python -m benchmarks.suite --vendor postgresql|sqlite --out FILE.json [--quick]

run_all.py starts it once per database (Django is configured once per
process) and reads the JSON it writes. It creates the scratch database
(PostgreSQL: harness.scratch_database; SQLite: a temporary file), its own
Redis namespace and RabbitMQ queue, fills the users once, then runs the
request path (compare.py), the fan-out (fanout.py) and end to end
(end_to_end.py), and removes all of it however it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, services  # noqa: E402

#: What a full and a --quick run measure.
PLANS: dict[str, dict[str, Any]] = {
    "full": {
        "request": {"sizes": [10, 100, 1000, 10000], "slow_sizes": [10, 100, 1000, 10000],
                    "budget": 2.5, "min_iterations": 3, "max_iterations": 200},
        "fanout": {"sizes": [10_000, 100_000, 1_000_000],
                   "repeats": {10_000: 3, 100_000: 1, 1_000_000: 1},
                   "bulk_max": {"postgresql": 1_000_000, "sqlite": 100_000},
                   "cap": {"postgresql": 150, "sqlite": 60}},
        "e2e": {"sizes": [1000, 100_000], "iterations": {1000: 20, 100_000: 2},
                "processes": [1, 2]},
    },
    "quick": {
        "request": {"sizes": [10, 100, 1000, 10000], "slow_sizes": [10, 100, 1000],
                    "budget": 0.4, "min_iterations": 2, "max_iterations": 40},
        "fanout": {"sizes": [10_000, 100_000], "repeats": {10_000: 1, 100_000: 1},
                   "bulk_max": {"postgresql": 10_000, "sqlite": 10_000},
                   "cap": {"postgresql": 30, "sqlite": 30}},
        "e2e": {"sizes": [1000, 100_000], "iterations": {1000: 5, 100_000: 1},
                "processes": [1, 2]},
    },
    # A check that everything runs, in about a minute; its figures mean nothing.
    "smoke": {
        "request": {"sizes": [10, 1000], "slow_sizes": [10], "budget": 0.05,
                    "min_iterations": 2, "max_iterations": 5},
        "fanout": {"sizes": [2000], "repeats": {2000: 1},
                   "bulk_max": {"postgresql": 2000, "sqlite": 2000},
                   "cap": {"postgresql": 30, "sqlite": 30}},
        "e2e": {"sizes": [100, 2000], "iterations": {100: 2, 2000: 1}, "processes": [1, 2]},
    },
}  # fmt: skip
PARTS = ("request", "fanout", "e2e")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", choices=("postgresql", "sqlite"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plan", choices=PLANS, default="full")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    parser.add_argument("--scratch-db", default="offchat_bench_all")
    parser.add_argument("--redis-url", default=harness.DEFAULT_REDIS_URL)
    parser.add_argument("--rabbitmq-url", default=services.DEFAULT_RABBITMQ_URL)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.parts = [p for p in args.parts.split(",") if p]
    return args


def log(vendor: str) -> Any:
    started = time.perf_counter()

    def write(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s {vendor}] {text}", flush=True)

    return write


def grow(sizes: list[int], say: Any) -> None:
    """Users up to the largest size, and a group ``admin-N`` of the first N per size.

    In two steps: the request path and end to end run with the groups they
    use (up to 100,000 users), the fan-out then adds the 1,000,000-member
    group. A million-member group skews the membership statistics: the
    planner then estimates every ``group__name = ...`` join at the average
    group size, and the small-group queries of the inline variants and of
    the library's delivery take a plan that scans all memberships (measured
    on PostgreSQL: listing a group of 10 took 121 ms with the 1,000,000-member
    group present, 9.5 ms without it). That is a finding of the fan-out
    analysis (docs/performance.rst), not the request path's subject.
    """
    from django.contrib.auth.models import User

    started = time.perf_counter()
    services.populate({f"admin-{size}": size for size in sorted(set(sizes))})
    say(
        f"{User.objects.filter(username__startswith='user-').count():,} users, groups "
        f"{', '.join(f'admin-{s}' for s in sorted(set(sizes)))} ready in "
        f"{time.perf_counter() - started:.1f} s"
    )


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan = PLANS[args.plan]
    say = log(args.vendor)
    name = f"offchat-bench-{os.getpid()}"  # Redis namespace and queue name
    result: dict[str, Any] = {"vendor": args.vendor, "plan": plan, "checks": []}
    with ExitStack() as stack:
        if args.vendor == "postgresql":
            pg = harness.Postgres.from_url(args.database_url)
            database = pg.django_database(
                stack.enter_context(harness.scratch_database(pg, args.scratch_db))
            )
        else:
            database = services.sqlite_database(stack.enter_context(services.scratch_sqlite()))
        redis_client = stack.enter_context(harness.redis_namespace(args.redis_url, name))
        stack.enter_context(services.rabbit_queues(args.rabbitmq_url, name))
        spec = {
            "database": database,
            "redis_url": args.redis_url,
            "namespace": name,
            "apps": services.APPS,
            "broker": "offchat_notify.backends.dramatiq.broker.RedisBroker",
            "notify": {"BACKEND": "dramatiq", "OPTIONS": {"QUEUE": name}},
            "BENCH_RABBITMQ_URL": args.rabbitmq_url,
        }
        harness.configure_django(**spec)
        from django.contrib.auth.models import User
        from django.core.management import call_command

        from benchmarks import compare, end_to_end, fanout, peers

        peers.configure_celery(args.redis_url, name)
        call_command("migrate", verbosity=0)
        grow(plan["request"]["sizes"] + plan["e2e"]["sizes"], say)
        User.objects.create(username="sender", password="!")
        result["versions"] = harness.versions(redis_client) + [
            ("RabbitMQ server", services.rabbit_version(args.rabbitmq_url)),
            *[
                (n, services.dist(n))
                for n in ("celery", "kombu", "django-notifications-hq", "pika")
            ],
            *services.machine_facts(),
        ]
        if "request" in args.parts:
            bench = compare.RequestPath(compare.Plan(**plan["request"]), spec["notify"], args.seed)
            result["request_path"] = bench.run(say)
            result["checks"] += bench.checks(redis_client, name, name, args.rabbitmq_url)
        if "e2e" in args.parts:
            p = plan["e2e"]
            result["end_to_end"] = end_to_end.run(
                spec, p["sizes"], p["iterations"], p["processes"], args.out.parent, args.seed, say
            )
            result["checks"] += [
                [
                    r["ok"],
                    f"end to end {r['size']:,} x{r['processes']}: every Event delivered to all",
                ]
                for r in result["end_to_end"]
            ]
        if "fanout" in args.parts:
            # Last: the 1,000,000-member group joins only now (see grow()).
            grow(plan["fanout"]["sizes"], say)
            result["fanout"] = fanout.run(spec, plan["fanout"], args.vendor, args.seed, say)
            result["checks"] += [
                [r["ok"], f"fan-out {r['method']} {r['size']:,}: {r['rows']:,} rows"]
                for r in result["fanout"]
            ]
    result["checks"] = [[ok, f"{args.vendor}: {text}"] for ok, text in result["checks"]]
    args.out.write_text(json.dumps(result, indent=1))
    failed = [text for ok, text in result["checks"] if not ok]
    for text in failed:
        say(f"CHECK FAILED: {text}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
