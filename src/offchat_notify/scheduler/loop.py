"""The scheduler process: standby until it holds the leader lock, then tick.

Used by ``manage.py notify_scheduler``; separate from :mod:`offchat_notify.schedule`
(what runs when) so that the process machinery stays out of host imports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import db
from django.utils import timezone

from offchat_notify.backends import get_backend
from offchat_notify.backends.base import RUN_JOB
from offchat_notify.conf import get_settings
from offchat_notify.schedule.jobs import Job

logger = logging.getLogger(__name__)


class LeaderLoop:
    """Wait for the lock; while holding it, run an APScheduler that ticks the jobs.

    Each tick claims its scheduled time in the lock before it runs
    (``lock.claim_tick``), so no tick runs twice, whichever scheduler fires it.
    A new leader runs once, at once, each job whose latest tick was missed less
    than ``SCHEDULER_GRACE`` ago; APScheduler does the same for ticks missed
    while this process was paused. Several missed ticks coalesce into one run.
    """

    def __init__(
        self,
        jobs: dict[str, Job],
        lock: Any,
        *,
        log: Callable[[str], Any] = logger.info,
        verbose: bool = True,
    ) -> None:
        self.jobs = jobs
        self.lock = lock
        self.log = log
        # Every tick (the relay's: every 5 s) is a line only when asked for
        # (notify_scheduler -v 2); otherwise it is logged at DEBUG.
        self.log_tick: Callable[[str], Any] = log if verbose else logger.debug
        conf = get_settings()
        self.ttl = float(conf.SCHEDULER_LOCK_TTL)
        self.grace = float(conf.SCHEDULER_GRACE)
        self._stop = threading.Event()
        # How long a claimed tick is remembered: enough to see what was missed.
        self._keep_ms = {
            name: int(2000 * (job.period().total_seconds() + self.grace))
            for name, job in jobs.items()
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
                try:
                    leading = self.lock.acquire()
                    holder = None if leading else self.lock.holder()
                except Exception as exc:  # Redis unreachable: stay on standby and retry
                    logger.error("Could not reach the scheduler lock: %s; retrying.", exc)
                    leading, holder, standby_logged = False, None, False
                if leading:
                    standby_logged = False
                    self.lead()
                    continue
                if not standby_logged and holder is not None:
                    self.log(f"Standby: the active scheduler is {holder}.")
                    standby_logged = True
                self._stop.wait(max(self.ttl / 4, 0.1))
        finally:
            try:
                self.lock.release()
            except Exception as exc:
                logger.error("Could not release the scheduler lock: %s", exc)
            self.log("Scheduler stopped.")

    def lead(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            timezone=timezone.get_default_timezone(),
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, round(self.grace)),
            },
        )
        if self.lock.locked:
            self.log(f"Active: this scheduler ({self.lock.token}) holds the lock.")
        else:
            self.log("Active: the only scheduler (no lock: run exactly one).")
        now = timezone.now()
        for name, job in self.jobs.items():
            trigger = job.trigger()
            scheduler.add_job(
                self.tick,
                trigger=trigger,
                args=[name],
                id=name,
                name=name,
                next_run_time=self.first_run(name, job, trigger, now),
            )
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
            return bool(self.lock.renew())
        except Exception as exc:  # Redis unreachable: we cannot know we still lead
            logger.error("Could not renew the scheduler lock: %s", exc)
            return False

    def first_run(self, name: str, job: Job, trigger: Any, now: datetime) -> datetime:
        """When this leader first ticks ``name``: now if a tick was missed, else on schedule.

        A tick was missed if the latest one due is after the last tick any
        scheduler claimed, and it is at most ``SCHEDULER_GRACE`` old. However
        many were missed, the job runs once.
        """
        on_schedule: datetime = trigger.get_next_fire_time(None, now)
        try:
            last = self.lock.last_tick(name)
        except Exception as exc:
            logger.error("Could not read the last tick of %s: %s", name, exc)
            return on_schedule
        latest = job.last_fire_time(now)
        if last is None or latest is None or _ms(latest) <= last:
            return on_schedule
        if (now - latest).total_seconds() > self.grace:
            return on_schedule
        self.log(
            f"Catching up on {name}: its tick at {timezone.localtime(latest):%H:%M:%S} was missed."
        )
        return latest

    def tick(self, name: str) -> None:
        """One tick of a job: claim its scheduled time, then hand the job to the backend."""
        job = self.jobs[name]
        now = timezone.now()
        due = job.last_fire_time(now) or now
        try:
            claimed = self.lock.claim_tick(name, _ms(due), self._keep_ms[name])
        except Exception as exc:  # cannot know whether another scheduler ran it
            logger.error("Could not claim the tick of %s at %s: %s; skipped.", name, due, exc)
            return
        if not claimed:
            logger.warning(
                "Tick of %s due at %s already ran (another scheduler); skipped.", name, due
            )
            return
        self.log_tick(
            f"Tick {name} (due {timezone.localtime(due):%H:%M:%S}) "
            f"at {timezone.localtime(now):%H:%M:%S.%f}"
        )
        db.close_old_connections()
        try:
            get_backend().enqueue(RUN_JOB, name)
        except Exception:
            logger.exception("Periodic job %s failed to run or enqueue.", name)
        finally:
            db.close_old_connections()


def _ms(when: datetime) -> int:
    """Unix time in milliseconds: how ticks are named in the lock."""
    return int(when.timestamp() * 1000)
