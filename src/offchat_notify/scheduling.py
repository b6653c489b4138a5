"""The scheduler process: standby until it holds the leader lock, then tick.

Used by ``manage.py notify_scheduler``; separate from :mod:`.scheduler` (what
runs when) so that the process machinery stays out of host imports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django import db
from django.utils import timezone

from .backends import get_backend
from .conf import get_settings
from .scheduler import Job

logger = logging.getLogger(__name__)


class LeaderLoop:
    """Wait for the lock; while holding it, run an APScheduler that ticks the jobs."""

    def __init__(
        self,
        jobs: dict[str, Job],
        lock: Any,
        *,
        log: Callable[[str], Any] = logger.info,
        style: Any = None,
    ) -> None:
        self.jobs = jobs
        self.lock = lock
        self.log = log
        self.style = style
        conf = get_settings()
        self.ttl = float(conf.SCHEDULER_LOCK_TTL)
        self.grace = float(conf.SCHEDULER_GRACE)
        self._stop = threading.Event()
        self._periods = {
            name: int(job.period().total_seconds() * 1000) for name, job in jobs.items()
        }

    def stop(self, reason: str = "") -> None:
        self.log(f"Stopping the scheduler ({reason})." if reason else "Stopping the scheduler.")
        self._stop.set()

    def run(self) -> None:
        self.log(f"Scheduler {self.lock.token} starting; {self.lock}.")
        for name, job in sorted(self.jobs.items()):
            self.log(f"  job {name}: {job.task}, {job.describe()}")
        standby_logged = False
        try:
            while not self._stop.is_set():
                if self.lock.acquire():
                    standby_logged = False
                    self.lead()
                else:
                    if not standby_logged:
                        self.log(f"Standby: the active scheduler is {self.lock.holder()}.")
                        standby_logged = True
                    self._stop.wait(max(self.ttl / 4, 0.1))
        finally:
            self.lock.release()
            self.log("Scheduler stopped.")

    def lead(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            timezone=timezone.get_default_timezone(),
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.grace),
            },
        )
        for name, job in self.jobs.items():
            scheduler.add_job(self.tick, trigger=job.trigger(), args=[name], id=name, name=name)
        self.log(f"Active: this scheduler ({self.lock.token}) holds the lock.")
        self.catch_up()
        scheduler.start()
        try:
            for job in scheduler.get_jobs():
                self.log(f"  next {job.id}: {timezone.localtime(job.next_run_time):%H:%M:%S %Z}")
            while not self._stop.wait(max(self.ttl / 3, 0.1)):
                if not self._renew():
                    self.log("Lost the lock (paused or cut off too long); back to standby.")
                    return
        finally:
            scheduler.shutdown(wait=False)

    def _renew(self) -> bool:
        try:
            return self.lock.renew()
        except Exception as exc:  # Redis unreachable: we cannot know we still lead
            logger.error("Could not renew the scheduler lock: %s", exc)
            return False

    def catch_up(self) -> None:
        """Run once, now, each job whose tick was missed while no scheduler was active."""
        now = timezone.now()
        for name, job in self.jobs.items():
            last = self.last_run(name)
            if last is None:
                continue
            due = job.trigger().get_next_fire_time(last, last + timedelta(microseconds=1))
            if due is not None and due < now and (now - due).total_seconds() <= self.grace:
                missed = timezone.localtime(due)
                self.log(f"Catching up on {name}: its tick at {missed:%H:%M:%S} was missed.")
                self.tick(name)

    def tick(self, name: str) -> None:
        """One tick of a job: claim it, then hand the job to the backend."""
        if not self.lock.claim_tick(name, self._periods[name]):
            logger.warning("Tick of %s already claimed by another scheduler; skipped.", name)
            return
        self.record_run(name)
        self.log(f"Tick {name} at {timezone.localtime():%H:%M:%S.%f}")
        db.close_old_connections()
        try:
            get_backend().enqueue_job(name)
        except Exception:
            logger.exception("Periodic job %s failed to run or enqueue.", name)
        finally:
            db.close_old_connections()

    def record_run(self, name: str) -> None:
        self.lock.set(f"last:{name}", timezone.now().isoformat())

    def last_run(self, name: str) -> datetime | None:
        value = self.lock.get(f"last:{name}")
        return datetime.fromisoformat(value) if value else None
