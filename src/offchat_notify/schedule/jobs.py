"""Periodic jobs: what runs when. ``manage.py notify_scheduler`` ticks them.

Jobs come from three places, merged by :func:`get_jobs`:

* the built-in jobs, ``relay`` and ``retention`` (:data:`BUILTIN_JOBS`),
  which ``OFFCHAT_NOTIFY["SCHEDULE"]`` can retime or disable;
* host functions decorated with :func:`periodic`, in ``<app>/notifications.py``;
* entries of ``SCHEDULE`` naming a function by dotted path.

A tick only *enqueues* a job: under a worker backend (``dramatiq``, ``tasks``)
a worker runs it; under ``sync`` and ``eager`` the scheduler runs it itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.utils import timezone

from offchat_notify.conf import get_settings
from offchat_notify.exceptions import NotifyConfigurationError

logger = logging.getLogger(__name__)

#: Interval jobs tick on multiples of their period counted from this instant,
#: so every scheduler process agrees on when a tick is due.
EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)

#: The library's own jobs and their default timing.
BUILTIN_JOBS: dict[str, dict[str, Any]] = {
    "relay": {"task": "offchat_notify.relay.relay", "every": 5},
    "retention": {"task": "offchat_notify.retention.purge", "cron": "30 3 * * *"},
}


@dataclasses.dataclass(frozen=True)
class Job:
    """One periodic job: a function, and a cron string or an interval."""

    name: str
    task: str  # dotted path of the function
    cron: str | None = None
    every: timedelta | None = None

    def trigger(self) -> Any:
        """The APScheduler trigger, in the project's TIME_ZONE."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        tz = timezone.get_default_timezone()
        if self.cron is not None:
            check_cron(self.cron)
            return CronTrigger.from_crontab(self.cron, timezone=tz)
        assert self.every is not None
        return IntervalTrigger(seconds=self.every.total_seconds(), start_date=EPOCH, timezone=tz)

    def period(self) -> timedelta:
        """The time between two ticks (for cron, between the next two)."""
        if self.every is not None:
            return self.every
        trigger = self.trigger()
        first: datetime = trigger.get_next_fire_time(None, timezone.now())
        second: datetime = trigger.get_next_fire_time(first, first + timedelta(microseconds=1))
        return second - first

    def last_fire_time(self, now: datetime) -> datetime | None:
        """The latest tick at or before ``now``: the tick that a run at ``now`` belongs to.

        Every scheduler computes the same value for the same instant, so it
        names a tick in the claims that keep a tick from running twice.
        """
        if self.every is not None:
            return EPOCH + ((now - EPOCH) // self.every) * self.every
        trigger = self.trigger()
        lookback = timedelta(minutes=1)
        while lookback < timedelta(days=800):
            fire = trigger.get_next_fire_time(None, now - lookback)
            if fire is not None and fire <= now:
                while True:
                    following = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                    if following is None or following > now:
                        return fire  # type: ignore[no-any-return]
                    fire = following
            lookback *= 2
        return None

    def describe(self) -> str:
        return f"cron {self.cron!r}" if self.cron else f"every {self.every.total_seconds():g}s"  # type: ignore[union-attr]


_decorated: dict[str, Job] = {}


def periodic(
    *, cron: str | None = None, every: timedelta | None = None, name: str | None = None
) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Run the decorated function periodically, from ``manage.py notify_scheduler``.

    Examples:
        >>> @periodic(cron="*/5 * * * *")
        ... def refresh_digest(): ...
        >>> @periodic(every=timedelta(seconds=30), name="ping")
        ... def ping(): ...

    The cron string is checked by ``manage.py check`` (offchat_notify.E011), in
    the project's ``TIME_ZONE``. Day-of-week must be written as names
    (``mon-fri``): APScheduler 3 and cron number the days differently.
    """
    if (cron is None) == (every is None):
        raise TypeError("periodic() takes exactly one of cron= and every=.")
    if every is not None and (not isinstance(every, timedelta) or every <= timedelta(0)):
        raise TypeError(f"periodic(every=...) takes a positive timedelta, not {every!r}.")

    def register(func: Callable[[], Any]) -> Callable[[], Any]:
        task = f"{func.__module__}.{func.__qualname__}"
        job_name = name or task
        _decorated[job_name] = Job(job_name, task, cron=cron, every=every)
        return func

    return register


def check_cron(cron: str) -> None:
    """Raise ValueError unless ``cron`` is a 5-field crontab APScheduler accepts safely."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split() if isinstance(cron, str) else []
    if len(fields) != 5:
        raise ValueError(
            f"{cron!r} is not a 5-field crontab expression (minute hour day month dow)."
        )
    if any(ch.isdigit() for ch in fields[4]):
        raise ValueError(
            f"{cron!r}: write the day of the week as names (mon-fri, sun): "
            "APScheduler 3 counts 0 as Monday where cron counts it as Sunday."
        )
    try:
        trigger = CronTrigger.from_crontab(cron, timezone=timezone.get_default_timezone())
    except ValueError as e:
        raise ValueError(f"{cron!r}: {e}") from e
    if trigger.get_next_fire_time(None, timezone.now()) is None:
        raise ValueError(f"{cron!r} never fires.")


def _job_from_entry(name: str, entry: dict[str, Any], default_task: str | None) -> Job:
    if not isinstance(entry, dict):
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['SCHEDULE'][{name!r}] must be a dict or None, not {entry!r}."
        )
    unknown = set(entry) - {"task", "cron", "every"}
    if unknown:
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['SCHEDULE'][{name!r}] has unknown key(s) {sorted(unknown)}; "
            "use task, cron, every."
        )
    task = entry.get("task", default_task)
    if not isinstance(task, str) or not task:
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['SCHEDULE'][{name!r}] needs a 'task': the dotted path of a function."
        )
    cron, every = entry.get("cron"), entry.get("every")
    if (cron is None) == (every is None):
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['SCHEDULE'][{name!r}] needs exactly one of 'cron' and 'every'."
        )
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, (int, float, timedelta)):
            raise NotifyConfigurationError(
                f"OFFCHAT_NOTIFY['SCHEDULE'][{name!r}]['every'] must be seconds or a timedelta."
            )
        every = every if isinstance(every, timedelta) else timedelta(seconds=every)
        if every <= timedelta(0):
            raise NotifyConfigurationError(
                f"OFFCHAT_NOTIFY['SCHEDULE'][{name!r}]['every'] must be positive."
            )
    return Job(name, task, cron=cron, every=every)


def get_jobs() -> dict[str, Job]:
    """Every job to schedule, by name. Raises NotifyConfigurationError on a bad SCHEDULE.

    A SCHEDULE entry named like a built-in or a decorated job retimes it
    (``{"every": 60}``), replaces its function (``{"task": ...}``) or, when
    None, disables it. Retention runs only when ``RETENTION_DAYS`` is set.
    """
    conf = get_settings()
    known = {name: _job_from_entry(name, spec, None) for name, spec in BUILTIN_JOBS.items()}
    known.update(_decorated)
    jobs = dict(known)
    for name, entry in conf.SCHEDULE.items():
        if entry is None:
            jobs.pop(name, None)
            continue
        base = known.get(name)
        if base is not None and isinstance(entry, dict) and not {"cron", "every"} & set(entry):
            entry = {"cron": base.cron, "every": base.every, **entry}  # keep its timing
            entry = {k: v for k, v in entry.items() if v is not None}
        jobs[name] = _job_from_entry(name, entry, base.task if base else None)
    retention = jobs.get("retention")
    if conf.RETENTION_DAYS is None and retention and retention.task == known["retention"].task:
        del jobs["retention"]
    return jobs
