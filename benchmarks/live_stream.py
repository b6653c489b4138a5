#!/usr/bin/env python
"""The live stream: N logged-in clients on one ASGI process, against polling (issue #14).

    python benchmarks/live_stream.py [--clients 100,1000] [--smoke]

For each N, N admins (distinct users, each with a session written to the
database; the clients send its key as the ``sessionid`` cookie) connect to
ONE web process started as a user starts it, ``uvicorn
benchmarks.live_asgi:application --host 127.0.0.1 --port P`` (default
settings), serving ``path("notifications/", include("offchat_notify.inbox.urls"))``.
ONE worker runs ``manage.py rundramatiq --processes 1 --threads 4`` on the
library's RedisBroker (end_to_end.Worker); ``OFFCHAT_NOTIFY["LIVE"]`` is
``"auto"``, so the live transport is Redis pub/sub. Database: a scratch
PostgreSQL database; Redis: keys under ``offchat-bench-<pid>:`` and the
channel ``offchat-bench-<pid>:live``.

Measured (live_phases.py): the web process's RSS and CPU with 0 and N idle
streams; then messages saved by this process (``notify_admins()`` in
``atomic()``), each after 0.5-3 s of idle, timed from just before the commit
until every client holds the event; then the same N users polling
``GET notifications/unread/`` every 5 s: the web CPU and database load
(``pg_stat_database``) of a quiet window, and the delay until each client
sees each new message in its count. Writes ``live_stream.{json,md}`` in
``--out`` and prints the Markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, services  # noqa: E402

HERE = Path(__file__).resolve().parent
PLANS = {
    "full": {
        "warm": 2,
        "samples": 20,
        "idle": 30.0,
        "idle_zero": 10.0,
        "timeout": 30.0,
        "interval": 5.0,
        "quiet": 30.0,
        "messages": 5,
    },
    "smoke": {
        "warm": 1,
        "samples": 4,
        "idle": 5.0,
        "idle_zero": 2.0,
        "timeout": 15.0,
        "interval": 5.0,
        "quiet": 10.0,
        "messages": 2,
    },
}
SMOKE_CLIENTS = [20]


def raise_fd_limit(clients: int) -> None:
    """Room for the clients' sockets here and the server's (uvicorn inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * clients + 512)) if hard != resource.RLIM_INFINITY else 65536
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2 * clients + 256:
        raise SystemExit(f"the open-file limit ({soft}, hard {hard}) is too low for {clients}")


def check(sizes: list[dict[str, Any]]) -> list[list[Any]]:
    """[ok, text]: every client got each message once, and only its own notifications.

    Polling's misses and errors are figures of the report, not failures.
    """
    from offchat_notify.models import Notification

    out = []
    for s in sizes:
        st = s["stream"]
        n = st["clients"]
        if st.get("refused"):
            out.append([False, f"{n} clients: refused {dict(st['refused'])}"])
            continue
        ids = {int(i) for got in st["events"].values() for i, _ in got}
        owner = dict(Notification.objects.filter(pk__in=ids).values_list("pk", "recipient_id"))
        wrong = sum(1 for u, got in st["events"].items() for i, _ in got if owner.get(int(i)) != u)
        dupes = sum(
            c - 1 for got in st["events"].values() for c in Counter(t for _, t in got).values()
        )
        complete = sum(1 for x in st["samples"] if x["complete"])
        out.append(
            [wrong == 0, f"{n} clients: {len(ids)} events received, {wrong} to the wrong user"]
        )
        out.append([dupes == 0, f"{n} clients: {dupes} events received twice"])
        out.append(
            [
                complete == len(st["samples"]),
                f"{n} clients: {complete}/{len(st['samples'])} messages reached every client",
            ]
        )
        out.append([st["disconnected"] == 0, f"{n} clients: {st['disconnected']} streams closed"])
    return out


def run_size(n: int, ctx: dict[str, Any], log: Any) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import override_settings

    from benchmarks.live_phases import poll_phase, stream_phase
    from benchmarks.live_server import WebServer, log_in, web_spec
    from offchat_notify.backends import get_backend
    from offchat_notify.roles import get_role_resolver

    role = f"admin-{n}"
    ids = list(User.objects.filter(groups__name=role).order_by("pk").values_list("pk", flat=True))
    sessions = log_in(ids)
    plan, rng, sender = ctx["plan"], ctx["rng"], ctx["sender"]
    with override_settings(OFFCHAT_NOTIFY={**settings.OFFCHAT_NOTIFY, "ADMIN_ROLE": role}):
        get_backend()
        get_role_resolver().validate(role)
        log_path = ctx["out"] / f"live-uvicorn-{n}.log"
        with WebServer(web_spec(ctx["spec"], ctx["pool"]), log_path) as web:
            stream = stream_phase(web, sessions, plan, sender, ctx["redis"], rng, log)
            poll = None
            if not stream.get("refused"):
                poll = poll_phase(web, sessions, plan, sender, rng, log)
            web.check_alive()
    ctx["worker"].check_alive()
    return {"clients": n, "stream": stream, "poll": poll}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="100,1000", help="client counts (default 100,1000)")
    parser.add_argument("--smoke", action="store_true", help="a quick check with 20 clients")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", harness.DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--scratch-db", default="offchat_bench_live")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", harness.DEFAULT_REDIS_URL)
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=10,
        help="the web process's database pool size (default 10; 0: a connection per request)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        args.clients = SMOKE_CLIENTS if args.smoke else [int(c) for c in args.clients.split(",")]
    except ValueError:
        parser.error(f"--clients takes whole numbers separated by commas, not {args.clients!r}")
    if args.pool < 0:
        parser.error("--pool takes 0 (no pool) or a pool size")
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients needs at least one count of 1 or more")
    return args


def main() -> int:
    from benchmarks.end_to_end import OURS, Worker
    from benchmarks.live_report import markdown
    from benchmarks.live_server import spec as run_spec
    from benchmarks.run_all import library_snapshot

    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    raise_fd_limit(max(args.clients))
    plan = PLANS["smoke" if args.smoke else "full"]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    loads: list[float] = []

    def log(text: str) -> None:
        loads.append(os.getloadavg()[0])
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    name = f"offchat-bench-{os.getpid()}"
    with library_snapshot() as source, ExitStack() as stack:
        sys.path.insert(0, os.environ["PYTHONPATH"].split(os.pathsep)[0])
        pg = harness.Postgres.from_url(args.database_url)
        database = pg.django_database(
            stack.enter_context(harness.scratch_database(pg, args.scratch_db))
        )
        redis_client = stack.enter_context(harness.redis_namespace(args.redis_url, name))
        spec = run_spec(database, args.redis_url, name, OURS)
        harness.configure_django(**spec)
        from django.contrib.auth.models import User
        from django.core.management import call_command

        import offchat_notify

        call_command("migrate", verbosity=0)
        services.populate({f"admin-{n}": n for n in args.clients})
        sender = User.objects.create(username="sender", password="!")
        log(f"measuring {offchat_notify.__file__}; load {os.getloadavg()}")
        worker = stack.enter_context(Worker("redis", spec, args.out / "live-worker.log"))
        ctx = {
            "plan": plan,
            "rng": random.Random(args.seed),
            "sender": sender,
            "spec": spec,
            "redis": redis_client,
            "pool": args.pool,
            "out": args.out,
            "worker": worker,
        }
        sizes = [run_size(n, ctx, log) for n in args.clients]
        checks = check(sizes)
        versions = harness.versions(redis_client) + [("uvicorn", services.dist("uvicorn"))]
    for s in sizes:
        s["stream"]["events"] = len(s["stream"].get("events", {}))  # not kept in the JSON
    result = {
        "command": "python benchmarks/live_stream.py"
        + (" --smoke" if args.smoke else f" --clients {','.join(map(str, args.clients))}")
        + (f" --pool {args.pool}" if args.pool != 10 else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "minutes": (time.perf_counter() - started) / 60,
        "source": source[0][1],
        "load_range": f"{min(loads):.1f}-{max(loads):.1f}",
        "plan": plan,
        "pool": args.pool,
        "sizes": sizes,
        "checks": checks,
        "versions": versions,
    }
    base = args.out / "live_stream"
    base.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    base.with_suffix(".md").write_text(text)
    print("\n" + text)
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
