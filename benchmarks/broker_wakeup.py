"""Start latency and idle CPU of a Redis worker: dramatiq's RedisBroker against the library's.

Issue #13 item 1. Two workers run side by side, each started the documented
way, ``python manage.py rundramatiq --processes 1 --threads 4``, with nothing
in the environment but the settings' own variables: one on
``dramatiq.brokers.redis.RedisBroker`` ("stock"), one on
``offchat_notify.backends.dramatiq.broker.RedisBroker`` ("ours"), each in a
Redis namespace of its own. The project they run is written to a temporary
directory: one actor, which records ``time.time()`` the moment it starts.

* Start latency: from just before ``enqueue`` to the actor's first line. Each
  sample sends one message to both workers at once (the order alternates), after
  an idle gap drawn from 0.5-3 s (``--samples``), and after 60 s of idle
  (``--long-idle`` times). Reported: median, p95, max.
* Idle CPU: user + system seconds of every process of each worker (the
  supervisor and its worker process: ``/proc/<pid>/stat``) over each 60 s idle
  window, both workers measured over the same windows.
* Enqueue: the time ``enqueue`` takes in the sending process, 3,000 on each
  broker interleaved, after the rest (the library's pushes the wake token in
  the same Lua call as the message).

Run, from the repository root, with Redis at ``$REDIS_URL`` (default
``redis://127.0.0.1:6379/0``)::

    .venv/bin/python benchmarks/broker_wakeup.py [--samples 20] [--long-idle 3]

It needs only the development virtualenv (dramatiq, django-dramatiq, redis),
and Linux (``/proc``). Takes about ``samples x 3.5 s + long_idle x 61 s``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker as StockRedisBroker

from offchat_notify.backends.dramatiq.broker import RedisBroker as OurRedisBroker

BROKERS = {
    "stock": "dramatiq.brokers.redis.RedisBroker",
    "ours": "offchat_notify.backends.dramatiq.broker.RedisBroker",
}
QUEUE = "wakebench"

SETTINGS = """
import os
SECRET_KEY = "wakebench"
INSTALLED_APPS = ["django_dramatiq", "wakebench"]
DATABASES = {}
USE_TZ = True
DRAMATIQ_BROKER = {
    "BROKER": os.environ["WAKEBENCH_BROKER"],
    "OPTIONS": {"url": os.environ["WAKEBENCH_URL"], "namespace": os.environ["WAKEBENCH_NS"]},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
    ],
}
"""
TASKS = f"""
import os, time
import dramatiq, redis

_client = redis.Redis.from_url(os.environ["WAKEBENCH_URL"])
_key = os.environ["WAKEBENCH_NS"] + ":starts"

@dramatiq.actor(queue_name={QUEUE!r}, max_retries=0)
def mark(token):
    started = time.time()
    _client.rpush(_key, f"{{token}} {{started!r}}")
"""
MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wakebench_settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


def write_project(root: Path) -> None:
    (root / "wakebench").mkdir()
    (root / "wakebench" / "__init__.py").write_text("")
    (root / "wakebench" / "tasks.py").write_text(TASKS)
    (root / "wakebench_settings.py").write_text(SETTINGS)
    (root / "manage.py").write_text(MANAGE)


class Side:
    """One worker and the broker that sends to it."""

    def __init__(self, name: str, url: str, root: Path) -> None:
        self.name = name
        self.ns = f"wakebench-{name}-{uuid.uuid4().hex[:8]}"
        cls = OurRedisBroker if name == "ours" else StockRedisBroker
        self.broker = cls(url=url, namespace=self.ns, middleware=[])
        self.broker.declare_queue(QUEUE)
        self.results = redis.Redis.from_url(url)
        self.latencies: dict[str, list[float]] = {"gap": [], "idle60": []}
        self.enqueue_s: list[float] = []
        self.cpu: list[float] = []
        # Dramatiq's defaults: none of its environment variables (dramatiq_worker_timeout...)
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("dramatiq_")}
        env.update(WAKEBENCH_BROKER=BROKERS[name], WAKEBENCH_URL=url, WAKEBENCH_NS=self.ns)
        env["PYTHONPATH"] = str(root)
        command = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "4"]
        self.log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def send(self) -> tuple[str, float]:
        token = uuid.uuid4().hex
        message = Message(queue_name=QUEUE, actor_name="mark", args=(token,), kwargs={}, options={})
        sent = time.time()
        began = time.perf_counter()
        self.broker.enqueue(message)
        self.enqueue_s.append(time.perf_counter() - began)
        return token, sent

    def started(self, token: str, timeout: float = 30) -> float:
        reply = self.results.blpop([f"{self.ns}:starts"], timeout=timeout)
        if reply is None:
            sys.exit(f"{self.name}: no start within {timeout} s; see {self.log.name}")
        got, started = reply[1].decode().split()
        assert got == token, (got, token)
        return float(started)

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the worker's process group."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == self.proc.pid:  # the process group
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()
        self.broker.flush_all()
        keys = list(self.results.scan_iter(match=f"{self.ns}:*"))
        if keys:
            self.results.delete(*keys)


def sample(sides: list[Side], kind: str, order: int) -> None:
    """One message to each side at (nearly) the same moment; record their start latencies."""
    ordered = sides if order % 2 == 0 else sides[::-1]
    sent = [(side, *side.send()) for side in ordered]
    for side, token, at in sent:
        side.latencies[kind].append(side.started(token) - at)


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{statistics.median(ms):8.1f} {p95:8.1f} {ms[-1]:8.1f}"


def report(sides: list[Side], args: argparse.Namespace) -> None:
    print(f"\nStart latency, ms (median / p95 / max); {args.samples} gaps of 0.5-3 s, ")
    print(f"{args.long_idle} after 60 s idle. One worker each: --processes 1 --threads 4.\n")
    print(f"{'broker':8} {'after':10} {'median':>8} {'p95':>8} {'max':>8}")
    for side in sides:
        for kind, label in (("gap", "0.5-3 s"), ("idle60", "60 s")):
            if side.latencies[kind]:
                print(f"{side.name:8} {label:10} {percentiles(side.latencies[kind])}")
    print("\nIdle CPU, seconds per 60 s window (user + system, all processes of the worker):")
    for side in sides:
        windows = " ".join(f"{c:.2f}" for c in side.cpu)
        print(f"{side.name:8} total {sum(side.cpu):6.2f}  windows: {windows}")
    stock, ours = sides
    if stock.cpu and sum(stock.cpu):
        print(f"ours / stock idle CPU: {sum(ours.cpu) / sum(stock.cpu):.2f}")
    print(f"\nEnqueue, µs (median / p95 / max); {len(stock.enqueue_s)} each, interleaved:")
    for side in sides:
        us = [s * 1000 for s in side.enqueue_s]  # percentiles() multiplies by 1000 again
        print(f"{side.name:8} {percentiles(us)}")


def enqueue_cost(sides: list[Side], n: int = 3000) -> None:
    """Time ``n`` enqueues on each broker, interleaved, to a queue no worker consumes."""
    for side in sides:
        side.enqueue_s.clear()
        side.broker.declare_queue(f"{QUEUE}-enqueue")
    message = Message(
        queue_name=f"{QUEUE}-enqueue", actor_name="mark", args=(0,), kwargs={}, options={}
    )
    for i in range(n):
        for side in sides if i % 2 else sides[::-1]:
            began = time.perf_counter()
            side.broker.enqueue(message)
            side.enqueue_s.append(time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="sends after 0.5-3 s gaps")
    parser.add_argument("--long-idle", type=int, default=3, help="60 s idle windows")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wakebench-") as tmp:
        root = Path(tmp)
        write_project(root)
        sides = [Side("stock", args.redis_url, root), Side("ours", args.redis_url, root)]
        try:
            for side in sides:  # ready: the first message runs
                side.started(side.send()[0], timeout=120)
                side.enqueue_s.clear()
            time.sleep(3)
            for n in range(args.samples):
                time.sleep(random.uniform(0.5, 3.0))
                sample(sides, "gap", n)
            for n in range(args.long_idle):
                before = [side.cpu_seconds() for side in sides]
                time.sleep(60)
                for side, was in zip(sides, before, strict=True):
                    side.cpu.append(side.cpu_seconds() - was)
                sample(sides, "idle60", n)
                time.sleep(1)  # the messages' own work stays out of the next window
            enqueue_cost(sides)
        finally:
            for side in sides:
                side.stop()
        report(sides, args)


if __name__ == "__main__":
    main()
