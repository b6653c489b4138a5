"""End to end: from the commit of a chat message to all its notification rows present.

Real ``manage.py rundramatiq`` workers (one, then two worker processes) on
the run's Redis namespace, with ``dramatiq_worker_timeout=100`` (DESIGN.md
section 8: an idle Redis consumer otherwise backs off up to 1 s). For each
sample this process saves a Message and calls ``notify_admins()`` in
``transaction.atomic()``; the clock starts just before the commit (so the
commit and the on-commit send are inside) and stops when a ``COUNT`` of the
Event's Notification rows, polled every few ms, reaches the audience size.
Each sample follows a quiet spell of 0.2 to 0.4 s, so the workers are idle
when it arrives, as between messages of a chat. The Event's audience is
planned by the library as in production: above ``PARALLEL_CHUNK`` (default
50,000) recipients it is split into chunk jobs that the workers share.
The log line of each size splits the median into the broker hop (the
Event's creation to a worker's claim) and the worker's own delivery time.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import services
from benchmarks.variants import TEXT, VERB

WORKER_TIMEOUT_MS = 100
THREADS = 8  # dramatiq's default per worker process


class Workers:
    """``rundramatiq --processes N`` in a process group of its own, stopped on exit."""

    def __init__(self, spec: dict[str, Any], processes: int, log: Path) -> None:
        self.spec, self.processes, self.log_path = spec, processes, log

    def __enter__(self) -> Workers:
        env = services.child_env(
            self.spec,
            DJANGO_SETTINGS_MODULE="benchmarks.worker_settings",
            dramatiq_worker_timeout=str(WORKER_TIMEOUT_MS),
        )
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "rundramatiq",
                "--processes",
                str(self.processes),
                "--threads",
                str(THREADS),
                "--path",
                str(services.ROOT),
            ],
            cwd=services.ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def peak_rss_mb(self) -> float:
        """The largest peak RSS (VmHWM) among the worker processes."""
        import psutil

        children = psutil.Process(self.proc.pid).children(recursive=True)
        peaks = [services.peak_rss_of(p.pid) for p in children]
        return max((p for p in peaks if p is not None), default=0.0)

    def __exit__(self, *exc: object) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        self.log.close()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the workers exited ({self.proc.returncode}):\n{tail}")


def send(size: int, sender: Any) -> tuple[int, float]:
    """Save a message that notifies the ``admin-SIZE`` group; return (Event id, clock start)."""
    from django.conf import settings
    from django.db import transaction
    from django.test import override_settings

    from benchmarks.chat.models import Message
    from offchat_notify import notify_admins
    from offchat_notify.roles import get_role_resolver

    role = f"admin-{size}"
    with override_settings(OFFCHAT_NOTIFY={**settings.OFFCHAT_NOTIFY, "ADMIN_ROLE": role}):
        get_role_resolver().validate(role)
        with transaction.atomic():
            message = Message.objects.create(sender=sender, text=TEXT)
            event = notify_admins(VERB, title="New message", actor=sender, target=message)
            start = time.perf_counter()
    return event.pk, start


def wait_rows(event_id: int, size: int, start: float, workers: Workers, timeout: float) -> float:
    """Poll the row count until it is ``size``; return seconds since ``start``."""
    from offchat_notify.models import Notification

    rows = Notification.objects.filter(event_id=event_id)
    while True:
        elapsed = time.perf_counter() - start
        if rows.count() >= size:
            return time.perf_counter() - start
        if elapsed > timeout:
            workers.check_alive()
            raise RuntimeError(f"Event {event_id}: {rows.count()} of {size} rows after {timeout} s")
        time.sleep(min(0.05, max(0.001, elapsed / 20)))


def run(
    spec: dict[str, Any],
    sizes: list[int],
    iterations: dict[int, int],
    processes: list[int],
    log_dir: Path,
    seed: int,
    log: Any,
) -> list[dict[str, Any]]:
    import dramatiq
    from django.contrib.auth.models import User

    from offchat_notify.models import Event

    rng = random.Random(seed)
    sender = User.objects.get(username="sender")
    dramatiq.get_broker().flush_all()  # the request path's undelivered messages
    results = []
    for count in processes:
        samples: dict[int, list[float]] = {size: [] for size in sizes}
        events: list[tuple[int, int]] = []
        with Workers(spec, count, log_dir / f"workers-{count}.log") as workers:
            warm = [send(10, sender) for _ in range(2 * count)]
            for event_id, start in warm:
                wait_rows(event_id, 10, start, workers, timeout=120)
            for i in range(max(iterations.values())):
                for size in sizes:
                    if i >= iterations[size]:
                        continue
                    time.sleep(rng.uniform(0.2, 0.4))
                    event_id, start = send(size, sender)
                    samples[size].append(wait_rows(event_id, size, start, workers, 600))
                    events.append((event_id, size))
            deadline = time.monotonic() + 60
            while (
                Event.objects.filter(pk__in=[e for e, _ in events])
                .exclude(state=Event.State.DELIVERED)
                .exists()
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            peak = workers.peak_rss_mb()
        delivered = dict(
            Event.objects.filter(pk__in=[e for e, _ in events]).values_list("pk", "recipient_count")
        )
        ok = all(delivered.get(e) == size for e, size in events)
        # Where the time goes: from the Event's creation to a worker's claim
        # (the broker hop), and the claim to delivered (the worker's own work).
        timings: dict[int, tuple[list[float], list[float]]] = {s: ([], []) for s in sizes}
        for event_id, size in events:
            event = Event.objects.get(pk=event_id)
            if event.started_at and event.duration_ms is not None:
                pickup = (event.started_at - event.created_at).total_seconds() * 1000
                timings[size][0].append(pickup)
                timings[size][1].append(event.duration_ms)
        for size in sizes:
            results.append(
                {
                    "size": size,
                    "processes": count,
                    "samples": samples[size],
                    "worker_peak_rss_mb": peak,
                    "ok": ok,
                }
            )
            ms = statistics.median(samples[size]) * 1000
            pickup, work = timings[size]
            split = (
                f" (pickup {statistics.median(pickup):.0f} ms, delivery "
                f"{statistics.median(work):.0f} ms)"
                if pickup
                else ""
            )
            log(
                f"end to end {size:>7,} recipients, {count} worker process(es): median "
                f"{ms:.0f} ms{split}"
            )
    return results
