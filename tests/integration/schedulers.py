"""Scheduler processes for the tests in test_scheduler_processes.py (not a test module)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.helpers import ROOT, wait_for

PERIOD = 2  # seconds between ticks of the test job
RECORD = {"task": "tests.testapp.jobs.record", "every": PERIOD}
#: What a leader prints once its APScheduler runs.
LEADING = "  next record: "


class SchedulerProcess:
    """One ``python -m django notify_scheduler``, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "notify_scheduler", "--verbosity", "2", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``sig`` and return the exit code (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


class Schedulers:
    """Start schedulers sharing one lock key and one runs list; read what happened."""

    def __init__(self, redis_url: str, database: str, tmp_path: Path) -> None:
        import redis

        tag = uuid.uuid4().hex[:12]
        self.lock_key = f"offchat-test-scheduler:{tag}"
        self.runs_key = f"offchat-test-scheduler-runs:{tag}"
        self.client = redis.Redis.from_url(redis_url)
        self.redis_url = redis_url
        self.database = database
        self.tmp_path = tmp_path
        self.procs: list[SchedulerProcess] = []

    def env(self, *, ttl: float = 2, backend: str = "sync", broker: str = "stub", **extra: Any):
        notify: dict[str, Any] = {
            "BACKEND": backend,
            "SCHEDULE": {"record": RECORD, "relay": None},
            "SCHEDULER_LOCK_KEY": self.lock_key,
            "SCHEDULER_LOCK_TTL": ttl,
            "SCHEDULER_LOCK_URL": self.redis_url,
            **extra,
        }
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            # The repository root (for tests.settings), then the tests' own path:
            # the schedulers import the same offchat_notify as the tests (src/ when
            # PYTHONPATH says so, else the installed package).
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "TEST_BROKER": broker,
            "TEST_REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
            "DATABASE_URL": settings.DATABASE_URL,
            "OFFCHAT_WORKER_DATABASE": self.database,  # runs are recorded (JobRun) there
            "TEST_SCHEDULER_RUNS_KEY": self.runs_key,
            "TEST_OFFCHAT_NOTIFY": json.dumps({k: v for k, v in notify.items() if v != ...}),
        }

    def start(self, count: int = 1, *args: str, **env: Any) -> list[SchedulerProcess]:
        started = [
            SchedulerProcess(
                self.env(**env), self.tmp_path / f"scheduler-{len(self.procs) + i}.log", args
            )
            for i in range(count)
        ]
        self.procs.extend(started)
        return started

    def wait_ready(self, procs: list[SchedulerProcess], timeout: float = 60) -> SchedulerProcess:
        """Wait until one of ``procs`` leads and the others stand by; return the leader."""
        wait_for(
            lambda: (
                sum(LEADING in p.output() for p in procs) == 1
                and all(LEADING in p.output() or "Standby:" in p.output() for p in procs)
            ),
            timeout=timeout,
            what="one active scheduler and the others on standby",
            on_fail=self.outputs,
        )
        return self.leader()

    def leader(self) -> SchedulerProcess:
        """The scheduler whose token (host:pid:token) the lock key holds."""
        value = self.client.get(self.lock_key)
        assert value, "nobody holds the lock"
        pid = int(value.decode().split(":")[1])
        (proc,) = [p for p in self.procs if p.pid == pid]  # never signal a stranger
        return proc

    def runs(self, start: float = 0, end: float = math.inf) -> list[tuple[float, int]]:
        pairs = (item.decode().split() for item in self.client.lrange(self.runs_key, 0, -1))
        return [(t, pid) for t, pid in ((float(t), int(p)) for t, p in pairs) if start <= t < end]

    def outputs(self) -> str:
        return "\n".join(f"--- scheduler {p.pid}:\n{p.output()}" for p in self.procs)

    def cleanup(self) -> None:
        for proc in self.procs:
            proc.stop()
        keys = [self.lock_key, self.runs_key, *self.client.scan_iter(f"{self.lock_key}:*")]
        self.client.delete(*keys)
        self.client.close()


def at_phase(phase: float) -> float:
    """Sleep until the next instant ``phase`` seconds into a tick period; return it."""
    now = time.time()
    target = math.floor(now / PERIOD) * PERIOD + phase
    while target < now + 0.2:
        target += PERIOD
    time.sleep(target - now)
    return target


def sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


def assert_each_tick_ran_once(runs: list[tuple[float, int]], outputs: str) -> None:
    slots = Counter(math.floor(t / PERIOD) for t, _ in runs)
    twice = {slot * PERIOD: n for slot, n in slots.items() if n > 1}
    assert not twice, f"ticks that ran more than once: {twice}; runs: {runs}\n{outputs}"
