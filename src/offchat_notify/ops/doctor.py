"""Diagnose a setup: each finding says what is wrong and how to fix it.

Used by ``manage.py notify_doctor``. The checks run in the order a new user
meets the problems, and stop early where the rest could not be judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from offchat_notify.backends import get_backend
from offchat_notify.backends.base import ERROR, OK, WARNING, Finding
from offchat_notify.backends.dramatiq.diagnosis import start_command
from offchat_notify.checks import (
    check_deploy,
    check_schedule,
    check_scheduler_lock,
    check_settings,
)
from offchat_notify.conf import get_settings
from offchat_notify.models import JobRun
from offchat_notify.scheduler.jobs import get_jobs
from offchat_notify.scheduler.lock import get_lock

__all__ = ["ERROR", "OK", "WARNING", "Finding", "diagnose"]


def diagnose() -> Iterator[Finding]:
    yield Finding(OK, "offchat_notify is in INSTALLED_APPS")
    pending = _unapplied_migrations()
    if pending:
        yield Finding(
            ERROR,
            f"{len(pending)} migration(s) not applied: {', '.join(pending[:5])}",
            "python manage.py migrate",
        )
        return
    yield Finding(OK, "migrations applied")
    problems = [m for m in check_settings() + check_schedule() if m.is_serious()]
    for message in problems:
        yield Finding(ERROR, f"{message.id}: {message.msg}", message.hint or "")
    if problems:
        return
    conf = get_settings()
    yield Finding(OK, f"backend {conf.BACKEND!r} loads")
    if not settings.DEBUG:
        for message in check_deploy() + check_scheduler_lock():
            yield Finding(WARNING, f"{message.id}: {message.msg}", message.hint or "")
    yield from get_backend().diagnose()
    yield from _scheduler()


def _unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _backwards in plan]


def _scheduler() -> Iterator[Finding]:
    jobs = get_jobs()
    if not jobs:
        return
    lock = get_lock()
    if lock.locked:
        try:
            holder = lock.holder()
        except Exception as exc:
            yield Finding(
                ERROR, f"the scheduler lock's Redis does not answer: {exc}", start_command("redis")
            )
            return
        finally:
            lock.close()
        if holder is None:
            yield Finding(
                ERROR,
                "no scheduler is running (nobody holds the scheduler lock): the relay and "
                "retention do not run",
                "Start one: python manage.py notify_scheduler",
            )
        else:
            yield Finding(OK, f"scheduler {holder} is active")
    else:
        yield Finding(
            WARNING,
            "the scheduler runs without a lock: run exactly one notify_scheduler",
            "Set OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] (or use a Redis broker) to allow standbys.",
        )
    relay = JobRun.objects.filter(name="relay").first()
    if "relay" in jobs and relay is None:
        yield Finding(WARNING, "the relay has never run", "Start python manage.py notify_scheduler")
    elif relay is not None and relay.last_error:
        yield Finding(WARNING, f"the relay's last run failed: {relay.last_error}", "")
