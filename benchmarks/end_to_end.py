#!/usr/bin/env python
"""End to end, as users run it: from a chat message's commit to all its admins' rows committed.

    python benchmarks/end_to_end.py [--quick] [--docs]

Issue #13 item 4. One run, on PostgreSQL, measures four stacks side by side,
each with ONE worker started the documented way and nothing in its
environment (no ``dramatiq_worker_timeout``: every ``dramatiq_*`` variable is
removed from the worker's environment):

* ``redis``: ``manage.py rundramatiq --processes 1 --threads 4`` on the
  library's broker, ``offchat_notify.backends.dramatiq.broker.RedisBroker``
  (idle workers are woken at once);
* ``rabbitmq``: the same command on dramatiq's ``RabbitmqBroker`` (the sender
  is the library's ``DramatiqBackend`` with its actor on RabbitMQ,
  ``peers.RabbitBackend``);
* ``stock-redis``: the same command on dramatiq's stock ``RedisBroker`` (the
  baseline: an idle consumer polls with a backoff of up to 1 s);
* ``celery``: ``celery -A benchmarks.e2e_peers:app worker --concurrency 4``
  (prefork, Redis broker), the task sent with ``delay_on_commit`` and writing
  the admins' wide rows in one ``bulk_create`` (``peers.notify_admins_bulk``),
  what a Celery user writes.

The four workers run at the same time, each on its own queue.

**How a sample is timed.** This process saves a ``Message`` and calls
``notify_admins()`` (Celery: ``delay_on_commit``) in ``transaction.atomic()``;
the clock (``time.perf_counter``, and ``time.time`` for the split below) is
read just before the commit, so the commit, the on-commit send, the broker hop,
the delivery and its commit are all inside. It stops when this process,
polling every 1 ms on its own connection, sees the Event ``delivered`` (one
primary-key lookup; the library commits ``delivered`` with or after the rows,
so it implies every row committed; the row count is checked afterwards). For
Celery, which has no Event, it polls for the row of the group's last admin
(``bulk_create`` is one INSERT, so that row commits with all the others). A
sample's resolution is the poll, ~1-1.5 ms.

**Idle.** Gap samples: before each, the stack's worker has been idle for a
random 0.5-3 s (one untimed message first whenever the run switches stack, so
every timed sample follows its own gap). Long-idle samples: every worker idle
60 s, then one message of 1,000 admins to each stack in turn (each of them
idle at least 60 s).

**Where the time goes** (dramatiq stacks): from the worker's own timestamps
on the Event, on the same clock: ``hop`` = commit (clock start) to the claim
(``started_at``: commit, send, broker, worker pickup, job start); ``delivery``
= claim to ``delivered_at`` (the delivery's statements); ``tail`` = that to
this process seeing it (the delivery's last commit and the poll). A separate
phase times each SQL statement of a delivery run in this process
(``sync`` backend, ``connection.execute_wrapper``), at 10, 1,000 and 10,000
admins.

Writes ``benchmarks/results/end_to_end_stacks.{json,csv,md,png}`` and, with
``--docs``, copies the CSV, the markdown and the PNG into docs/performance/
(docs/performance.rst's "End to end" section shows them). run_all.py's suite
still calls :func:`run`: the library's Redis broker only, one worker started
the same way, gap samples only; it writes ``end_to_end.{csv,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, services  # noqa: E402
from benchmarks.variants import TEXT, VERB  # noqa: E402

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "performance"
THREADS = 4  # as documented: rundramatiq --processes 1 --threads 4
OURS = "offchat_notify.backends.dramatiq.broker.RedisBroker"
STACKS = ("redis", "rabbitmq", "stock-redis", "celery")
LABELS = {
    "redis": "dramatiq, library's RedisBroker",
    "rabbitmq": "dramatiq, RabbitmqBroker",
    "stock-redis": "dramatiq, stock RedisBroker",
    "celery": "Celery (Redis), bulk_create task",
}
PLANS = {
    "full": {"gap": {10: 16, 1000: 16, 10000: 10}, "idle60": 3, "budget": 5},
    "quick": {"gap": {10: 6, 1000: 6, 10000: 4}, "idle60": 1, "budget": 2},
    "smoke": {"gap": {10: 2, 1000: 2, 10000: 1}, "idle60": 0, "budget": 1},
}
LONG_IDLE_S = 60.0
LONG_IDLE_SIZE = 1000
POLL_S = 0.001  # --poll-ms


def _worker_env(spec: dict[str, Any], **extra: str) -> dict[str, str]:
    env = services.child_env(spec, DJANGO_SETTINGS_MODULE="benchmarks.worker_settings", **extra)
    # As users start it: none of dramatiq's tuning variables (dramatiq_worker_timeout...).
    return {k: v for k, v in env.items() if not k.lower().startswith("dramatiq_")}


class Worker:
    """One worker (``rundramatiq`` or Celery) in a process group of its own, stopped on exit."""

    def __init__(self, stack: str, spec: dict[str, Any], log: Path) -> None:
        self.stack, self.spec, self.log_path = stack, spec, log

    def command(self) -> list[str]:
        if self.stack == "celery":
            return [
                sys.executable, "-m", "celery", "-A", "benchmarks.e2e_peers:app", "worker",
                "--concurrency", str(THREADS), "--loglevel", "WARNING", "--without-gossip",
                "--without-mingle", "--without-heartbeat",
            ]  # fmt: skip
        return [
            sys.executable, "-m", "django", "rundramatiq", "--processes", "1",
            "--threads", str(THREADS), "--path", str(services.ROOT),
        ]  # fmt: skip

    def __enter__(self) -> Worker:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            self.command(),
            cwd=services.ROOT,
            env=_worker_env(self.spec),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def peak_rss_mb(self) -> float:
        import psutil

        try:
            procs = [psutil.Process(self.proc.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.Error:
            return 0.0
        peaks = [services.peak_rss_of(p.pid) for p in procs]
        return max((p for p in peaks if p is not None), default=0.0)

    def __exit__(self, *exc: object) -> None:
        services.stop_group(self.proc)
        self.log.close()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {self.stack} worker exited ({self.proc.returncode}):\n{tail}")


def worker_specs(spec: dict[str, Any], rabbit_url: str) -> dict[str, dict[str, Any]]:
    """Each stack's worker settings (the run's spec, another broker)."""
    from benchmarks.e2e_peers import STOCK_BROKER, stock_namespace

    return {
        "redis": {**spec, "broker": OURS},
        "stock-redis": {
            **spec,
            "broker": STOCK_BROKER,
            "namespace": stock_namespace(spec["namespace"]),
        },
        "rabbitmq": {
            **spec,
            "DRAMATIQ_BROKER": {
                "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
                "OPTIONS": {"url": rabbit_url},
                "MIDDLEWARE": harness.BROKER_MIDDLEWARE,
            },
        },
        "celery": {**spec, "broker": OURS},
    }


BACKENDS = {
    "redis": "dramatiq",
    "stock-redis": "benchmarks.e2e_peers.StockRedisBackend",
    "rabbitmq": "benchmarks.peers.RabbitBackend",
}


class Sender:
    """Saves a message that notifies ``admin-N`` on one stack and waits for all its rows."""

    def __init__(self, workers: dict[str, Worker]) -> None:
        from django.contrib.auth.models import User

        self.workers = workers
        self.poll_s = POLL_S
        self.sender = User.objects.get(username="sender")
        self.last_admin: dict[int, int] = {}

    def last_admin_id(self, size: int) -> int:
        if size not in self.last_admin:
            from django.contrib.auth.models import User

            self.last_admin[size] = (
                User.objects.filter(groups__name=f"admin-{size}")
                .order_by("-pk")
                .values_list("pk", flat=True)[0]
            )
        return self.last_admin[size]

    def sample(self, stack: str, size: int, timeout: float = 120) -> dict[str, Any]:
        from django.conf import settings
        from django.db import transaction
        from django.test import override_settings

        from benchmarks.chat.models import InlineNotification, Message
        from benchmarks.peers import notify_admins_bulk
        from offchat_notify import notify_admins
        from offchat_notify.models import Event
        from offchat_notify.roles import get_role_resolver

        role = f"admin-{size}"
        conf = {**settings.OFFCHAT_NOTIFY, "ADMIN_ROLE": role}
        if stack in BACKENDS:
            conf["BACKEND"] = BACKENDS[stack]
        with override_settings(OFFCHAT_NOTIFY=conf):
            event_id = None
            if stack == "celery":
                last = self.last_admin_id(size)
                with transaction.atomic():
                    message = Message.objects.create(sender=self.sender, text=TEXT)
                    notify_admins_bulk.delay_on_commit(message.pk, role)
                    wall, start = time.time(), time.perf_counter()
                done = InlineNotification.objects.filter(
                    recipient_id=last, target_object_id=str(message.pk)
                ).exists
            else:
                from offchat_notify.backends import get_backend

                get_backend()  # built (and its actors declared) outside the timed region
                get_role_resolver().validate(role)
                with transaction.atomic():
                    message = Message.objects.create(sender=self.sender, text=TEXT)
                    event_id = notify_admins(
                        VERB, title="New message", actor=self.sender, target=message
                    ).pk
                    wall, start = time.time(), time.perf_counter()
                state = Event.objects.filter(pk=event_id).values_list("state", flat=True)

                def done() -> bool:
                    return state[0] == Event.State.DELIVERED

            while not done():
                if time.perf_counter() - start > timeout:
                    self.workers[stack].check_alive()
                    raise RuntimeError(
                        f"{stack}: message {message.pk} not delivered in {timeout} s"
                    )
                time.sleep(self.poll_s)
            elapsed = time.perf_counter() - start
            seen = time.time()
        return {
            "stack": stack,
            "size": size,
            "ms": elapsed * 1000,
            "wall": wall,
            "seen": seen,
            "event": event_id,
            "message": message.pk,
        }


def _split(samples: list[dict[str, Any]]) -> None:
    """Add hop / delivery / tail (ms) to the dramatiq samples, from the Events' timestamps."""
    from offchat_notify.models import Event

    ids = [s["event"] for s in samples if s["event"]]
    events = {
        e["pk"]: e
        for e in Event.objects.filter(pk__in=ids).values(
            "pk", "started_at", "delivered_at", "recipient_count"
        )
    }
    for s in samples:
        e = events.get(s["event"])
        if e is None or e["started_at"] is None or e["delivered_at"] is None:
            continue
        s["hop"] = (e["started_at"].timestamp() - s["wall"]) * 1000
        s["delivery"] = (e["delivered_at"] - e["started_at"]).total_seconds() * 1000
        s["tail"] = (s["seen"] - e["delivered_at"].timestamp()) * 1000
        s["rows"] = e["recipient_count"]


def _check_rows(samples: list[dict[str, Any]]) -> list[list[Any]]:
    """[ok, text]: every sample's rows are all there."""
    from django.db.models import Count

    from benchmarks.chat.models import InlineNotification
    from offchat_notify.models import Notification

    checks = []
    for stack in sorted({s["stack"] for s in samples}):
        mine = [s for s in samples if s["stack"] == stack]
        if stack == "celery":
            counts = dict(
                InlineNotification.objects.filter(
                    target_object_id__in=[str(s["message"]) for s in mine]
                )
                .values_list("target_object_id")
                .annotate(n=Count("id"))
            )
            bad = [s for s in mine if counts.get(str(s["message"])) != s["size"]]
        else:
            counts = dict(
                Notification.objects.filter(event_id__in=[s["event"] for s in mine])
                .values_list("event_id")
                .annotate(n=Count("id"))
            )
            bad = [s for s in mine if counts.get(s["event"]) != s["size"]]
        checks.append([not bad, f"end to end {stack}: {len(mine)} messages, each delivered to all"])
    return checks


def statement_budget(sizes: list[int], repeats: int, log: Any) -> list[dict[str, Any]]:
    """Each SQL statement of one delivery, timed in this process (``sync`` backend)."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.test import override_settings

    from benchmarks.chat.models import Message
    from offchat_notify import notify_admins
    from offchat_notify.roles import get_role_resolver

    sender_user = __import__("django.contrib.auth.models", fromlist=["User"]).User.objects.get(
        username="sender"
    )
    out = []
    for size in sizes:
        role = f"admin-{size}"
        runs: list[list[tuple[str, float]]] = []
        totals = []
        conf = {**settings.OFFCHAT_NOTIFY, "ADMIN_ROLE": role, "BACKEND": "sync", "OPTIONS": {}}
        with override_settings(OFFCHAT_NOTIFY=conf):
            get_role_resolver().validate(role)
            for _ in range(repeats + 1):  # the first is a warm-up
                statements: list[tuple[str, float]] = []

                def timed(
                    execute: Any,
                    sql: str,
                    params: Any,
                    many: bool,
                    context: Any,
                    into: list[tuple[str, float]] = statements,
                ) -> Any:
                    t = time.perf_counter()
                    try:
                        return execute(sql, params, many, context)
                    finally:
                        into.append((" ".join(sql.split())[:90], time.perf_counter() - t))

                with connection.execute_wrapper(timed):
                    with transaction.atomic():
                        message = Message.objects.create(sender=sender_user, text=TEXT)
                        notify_admins(VERB, title="New message", actor=sender_user, target=message)
                        mark = len(statements)
                        t0 = time.perf_counter()
                    # the commit (not a statement the wrapper sees), then the on-commit delivery
                    total = time.perf_counter() - t0
                runs.append(statements[mark:])
                totals.append(total)
        out.append({"size": size, "runs": runs[1:], "totals_ms": [t * 1000 for t in totals[1:]]})
        log(f"statement budget {size:,}: {statistics.median(totals[1:]) * 1000:.1f} ms")
    return out


def measure(
    spec: dict[str, Any],
    rabbit_url: str,
    stacks: list[str],
    plan: dict[str, Any],
    log_dir: Path,
    seed: int,
    log: Any,
) -> dict[str, Any]:
    """The run: start one worker per stack, gap samples stack by stack, then the 60 s idles."""
    import dramatiq

    rng = random.Random(seed)
    dramatiq.get_broker().flush_all()  # anything left by the request path
    specs = worker_specs(spec, rabbit_url)
    samples: list[dict[str, Any]] = []
    load: list[tuple[float, ...]] = []
    with ExitStack() as stack_cm:
        workers = {
            s: stack_cm.enter_context(Worker(s, specs[s], log_dir / f"e2e-worker-{s}.log"))
            for s in stacks
        }
        sender = Sender(workers)
        for s in stacks:  # started, connected, warm
            for _ in range(3):
                sender.sample(s, 10, timeout=180)
        log(f"end to end: {len(stacks)} workers up")
        sizes = sorted(plan["gap"])
        # Gap samples: stack by stack, in two passes (the second in reverse order).
        order = list(stacks)
        rng.shuffle(order)
        for half, stacks_pass in enumerate((order, order[::-1])):
            for s in stacks_pass:
                sender.sample(s, 10)  # the first timed sample follows its own gap
                due = {size: (n + 1 - half) // 2 for size, n in plan["gap"].items()}
                schedule = [size for size in sizes for _ in range(due[size])]
                rng.shuffle(schedule)
                for size in schedule:
                    gap = rng.uniform(0.5, 3.0)
                    time.sleep(gap)
                    record = sender.sample(s, size)
                    record.update(idle="gap", gap_s=gap, load=os.getloadavg()[0])
                    samples.append(record)
                load.append(os.getloadavg())
                log(f"end to end: {s} pass {half + 1} done, load {os.getloadavg()[0]:.2f}")
        # Long idle: every worker idle 60 s, then one message to each, in turn.
        for round_ in range(plan["idle60"]):
            time.sleep(LONG_IDLE_S)
            order = list(stacks)
            rng.shuffle(order)
            for s in order:
                record = sender.sample(s, LONG_IDLE_SIZE)
                record.update(idle="60s", gap_s=LONG_IDLE_S, load=os.getloadavg()[0])
                samples.append(record)
            log(f"end to end: 60 s idle round {round_ + 1} done")
        rss = {s: w.peak_rss_mb() for s, w in workers.items()}
        for w in workers.values():
            w.check_alive()
    _split(samples)
    checks = _check_rows(samples)
    return {"samples": samples, "checks": checks, "worker_peak_rss_mb": rss, "load": load}


def summarize(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (stack, size, idle): n, median, p95, max, and the medians of the split."""
    rows = []
    keys = sorted(
        {(s["stack"], s["size"], s["idle"]) for s in samples},
        key=lambda k: (STACKS.index(k[0]), k[1], k[2] != "gap"),
    )
    for stack, size, idle in keys:
        mine = [s for s in samples if (s["stack"], s["size"], s["idle"]) == (stack, size, idle)]
        ms = [s["ms"] for s in mine]
        row = {
            "stack": stack,
            "size": size,
            "idle": idle,
            "n": len(ms),
            "median": statistics.median(ms),
            "p95": harness.quantile(ms, 0.95),
            "max": max(ms),
            "first": ms[0],
        }
        for part in ("hop", "delivery", "tail"):
            values = [s[part] for s in mine if part in s]
            row[part] = statistics.median(values) if values else None
        rows.append(row)
    return rows


def targets(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, PASS/MISS) for the issue's end-to-end targets."""
    out = []

    def find(stack: str, size: int, idle: str) -> dict[str, Any] | None:
        return next(
            (r for r in rows if (r["stack"], r["size"], r["idle"]) == (stack, size, idle)), None
        )

    for stack in ("redis", "rabbitmq"):
        gap, idle = find(stack, 1000, "gap"), find(stack, 1000, "60s")
        big = find(stack, 10000, "gap")
        if gap:
            out.append((f"{stack} 1,000 median < 30 ms", f"{gap['median']:.1f} ms",
                        "PASS" if gap["median"] < 30 else "MISS"))  # fmt: skip
            out.append((f"{stack} 1,000 p95 < 60 ms", f"{gap['p95']:.1f} ms",
                        "PASS" if gap["p95"] < 60 else "MISS"))  # fmt: skip
        if idle:
            out.append((f"{stack} 1,000 first after 60 s idle < 60 ms",
                        f"{idle['first']:.1f} ms (max of {idle['n']}: {idle['max']:.1f})",
                        "PASS" if idle["max"] < 60 else "MISS"))  # fmt: skip
        if big:
            out.append((f"{stack} 10,000 median < 150 ms", f"{big['median']:.1f} ms",
                        "PASS" if big["median"] < 150 else "MISS"))  # fmt: skip
    return out


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def markdown(result: dict[str, Any]) -> str:
    rows = summarize(result["samples"])
    lines = [
        "# End to end: commit to all admins' rows committed\n",
        f"Command: `{result['command']}`; {result['date']}; run time {result['minutes']:.1f} min; "
        f"load average (1 min) during the run {result['load_range']}; "
        f"offchat-notify source: {result['source']}.\n",
        "One worker per stack, started as documented, idle between messages; ms from just "
        f"before the commit to this process seeing the delivery committed ({POLL_S * 1000:g} ms "
        "poll). "
        "hop/delivery/tail: medians of the split from the Events' timestamps (dramatiq only).\n",
        "| stack | admins | idle before | n | median | p95 | max | hop | delivery | tail |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        idle = "0.5-3 s" if r["idle"] == "gap" else "60 s"
        lines.append(
            f"| {LABELS[r['stack']]} | {r['size']:,} | {idle} | {r['n']} | {r['median']:.1f} | "
            f"{r['p95']:.1f} | {r['max']:.1f} | {_f(r['hop'])} | {_f(r['delivery'])} | "
            f"{_f(r['tail'])} |"
        )
    lines += ["", "## Targets (issue #13)\n", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(rows)]
    if result.get("budget"):
        lines += ["", "## One delivery, statement by statement (in-process, `sync`)\n"]
        for b in result["budget"]:
            lines.append(
                f"**{b['size']:,} admins**: commit + on-commit delivery "
                f"{statistics.median(b['totals_ms']):.1f} ms median of {len(b['totals_ms'])}\n"
            )
            lines += ["| # | statement | median ms |", "|---:|---|---:|"]
            n = min(len(run) for run in b["runs"])
            for i in range(n):
                sql = b["runs"][0][i][0].replace("|", "\\|")
                med = statistics.median(run[i][1] * 1000 for run in b["runs"])
                lines.append(f"| {i + 1} | `{sql}` | {med:.2f} |")
            lines.append("")
    lines += ["", "## Peak RSS of the workers (VmHWM, MB)\n"]
    lines += [f"- {LABELS[s]}: {v:.0f}" for s, v in result["worker_peak_rss_mb"].items()]
    lines += ["", "## Correctness checks\n"]
    lines += [f"- {'ok' if ok else 'FAILED'}: {text}" for ok, text in result["checks"]]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    fields = ["stack", "size", "idle", "n", "median", "p95", "max", "first", "hop", "delivery",
              "tail"]  # fmt: skip
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for r in rows:
            writer.writerow([f"{r[k]:.2f}" if isinstance(r[k], float) else r[k] for k in fields])


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    stacks = [s for s in STACKS if any(x["stack"] == s for x in samples)]
    sizes = sorted({x["size"] for x in samples if x["idle"] == "gap"})
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 4.6), sharey=True)
    colors = {"redis": "C0", "rabbitmq": "C1", "stock-redis": "C7", "celery": "C2"}
    for ax, size in zip(axes, sizes, strict=False):
        for i, s in enumerate(stacks):
            gap = [
                x["ms"] for x in samples if (x["stack"], x["size"], x["idle"]) == (s, size, "gap")
            ]
            idle = [
                x["ms"] for x in samples if (x["stack"], x["size"], x["idle"]) == (s, size, "60s")
            ]
            if gap:
                ax.boxplot([gap], positions=[i], widths=0.5, whis=(5, 95), showfliers=False,
                           medianprops={"color": "black"})  # fmt: skip
                jitter = [i + 0.18 * ((k % 5) - 2) / 2 for k in range(len(gap))]
                ax.scatter(jitter, gap, s=10, color=colors[s], alpha=0.7, zorder=3)
            if idle:
                first = not any(t == "after 60 s idle" for t in ax.get_legend_handles_labels()[1])
                ax.scatter([i + 0.3] * len(idle), idle, marker="^", s=40, color="red", zorder=4,
                           label="after 60 s idle" if first else None)  # fmt: skip
        ax.set_xticks(range(len(stacks)), [s.replace("-", "\n") for s in stacks], fontsize=8)
        ax.set_yscale("log")
        if size == 1000:
            ax.axhline(30, color="red", linewidth=0.8, linestyle="--", label="30 ms median target")
            ax.axhline(
                60, color="red", linewidth=0.8, linestyle=":", label="60 ms p95 / idle target"
            )
        if size == 10000:
            ax.axhline(
                150, color="red", linewidth=0.8, linestyle="--", label="150 ms median target"
            )
        ax.set_title(f"{size:,} admins, one worker")
        ax.grid(True, axis="y", alpha=0.3, which="both")
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("ms, commit to all rows committed (log)")
    fig.suptitle("End to end after 0.5-3 s idle (box: p5-p95) and after 60 s idle (triangles)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(
    spec: dict[str, Any],
    sizes: list[int],
    iterations: dict[int, int],
    processes: list[int],
    log_dir: Path,
    seed: int,
    log: Any,
) -> list[dict[str, Any]]:
    """run_all.py's part: the library's Redis broker only, one worker (``processes`` ignored)."""
    plan = {"gap": dict(iterations), "idle60": 0}
    result = measure(spec, spec.get("BENCH_RABBITMQ_URL", ""), ["redis"], plan, log_dir, seed, log)
    ok = all(ok for ok, _ in result["checks"])
    out = []
    for size in sizes:
        mine = [s["ms"] / 1000 for s in result["samples"] if s["size"] == size]
        out.append(
            {
                "size": size,
                "processes": 1,
                "samples": mine,
                "worker_peak_rss_mb": result["worker_peak_rss_mb"]["redis"],
                "ok": ok,
            }
        )
        median_ms = statistics.median(mine) * 1000
        log(f"end to end {size:>7,} recipients, 1 worker: median {median_ms:.0f} ms")
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--smoke", action="store_true")
    parser.add_argument("--docs", action="store_true", help="copy the results to docs/performance")
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", harness.DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--scratch-db", default="offchat_bench_e2e")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", harness.DEFAULT_REDIS_URL)
    )
    parser.add_argument(
        "--rabbitmq-url", default=os.environ.get("RABBITMQ_URL", services.DEFAULT_RABBITMQ_URL)
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--poll-ms", type=float, default=1.0, help="the poll's sleep (default 1)")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="the database's CONN_MAX_AGE in the worker and here (default 0, Django's "
        "default; docs/deployment.rst recommends 60)",
    )
    args = parser.parse_args()
    args.stacks = [s for s in args.stacks.split(",") if s]
    unknown = sorted(set(args.stacks) - set(STACKS))
    if unknown:
        parser.error(f"unknown stack(s) {', '.join(unknown)}; choose from {', '.join(STACKS)}")
    return args


def main() -> int:
    from benchmarks.run_all import library_snapshot

    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[plan_name]
    global POLL_S
    POLL_S = args.poll_ms / 1000
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    name = f"offchat-bench-{os.getpid()}"
    with library_snapshot() as source, ExitStack() as stack:
        # The snapshot is on PYTHONPATH for the children; put it first here too.
        sys.path.insert(0, os.environ["PYTHONPATH"].split(os.pathsep)[0])
        pg = harness.Postgres.from_url(args.database_url)
        database = pg.django_database(
            stack.enter_context(harness.scratch_database(pg, args.scratch_db))
        )
        if args.conn_max_age:
            database.update(CONN_MAX_AGE=args.conn_max_age, CONN_HEALTH_CHECKS=True)
        redis_client = stack.enter_context(harness.redis_namespace(args.redis_url, name))
        stack.enter_context(services.rabbit_queues(args.rabbitmq_url, name))
        spec = {
            "database": database,
            "redis_url": args.redis_url,
            "namespace": name,
            "apps": services.APPS,
            "broker": OURS,
            "notify": {"BACKEND": "dramatiq", "OPTIONS": {"QUEUE": name}},
            "BENCH_RABBITMQ_URL": args.rabbitmq_url,
        }
        harness.configure_django(**spec)
        from django.contrib.auth.models import User
        from django.core.management import call_command

        from benchmarks import peers

        peers.configure_celery(args.redis_url, name)
        call_command("migrate", verbosity=0)
        services.populate({f"admin-{size}": size for size in plan["gap"]})
        User.objects.create(username="sender", password="!")
        versions = harness.versions(redis_client) + [
            ("RabbitMQ server", services.rabbit_version(args.rabbitmq_url)),
            *[(n, services.dist(n)) for n in ("celery", "kombu", "pika")],
        ]
        import offchat_notify

        log(f"measuring {offchat_notify.__file__}; load {os.getloadavg()}")
        result = measure(spec, args.rabbitmq_url, args.stacks, plan, args.out, args.seed, log)
        result["budget"] = statement_budget(sorted(plan["gap"]), plan["budget"], log)
    loads = [s["load"] for s in result["samples"]]
    result.update(
        command="python benchmarks/end_to_end.py"
        + "".join(f" --{flag}" for flag in ("quick", "smoke") if getattr(args, flag))
        + (f" --stacks {','.join(args.stacks)}" if args.stacks != list(STACKS) else "")
        + (f" --poll-ms {args.poll_ms:g}" if args.poll_ms != 1.0 else ""),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        minutes=(time.perf_counter() - started) / 60,
        load_range=f"{min(loads):.2f}-{max(loads):.2f}" if loads else "?",
        source=source[0][1],
        versions=versions,
        plan=plan_name,
    )
    base = args.out / "end_to_end_stacks"
    base.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    base.with_suffix(".md").write_text(text)
    write_csv(base.with_suffix(".csv"), summarize(result["samples"]))
    plot(result, base.with_suffix(".png"))
    print("\n" + text)
    if args.docs:
        for suffix in (".csv", ".md", ".png"):
            shutil.copy2(base.with_suffix(suffix), DOCS / f"end_to_end_stacks{suffix}")
        print(f"Copied end_to_end_stacks.{{csv,md,png}} to {os.path.relpath(DOCS)}/")
    return 0 if all(ok for ok, _ in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
