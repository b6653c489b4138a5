"""Diagnose a setup: each finding says what is wrong and how to fix it.

Used by ``manage.py notify_doctor``. The checks run in the order a new user
meets the problems, and stop early where the rest could not be judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.migrations.executor import MigrationExecutor

from offchat_notify.backends import get_backend
from offchat_notify.backends.base import ERROR, OK, WARNING, Finding
from offchat_notify.backends.dramatiq.diagnosis import start_command
from offchat_notify.checks import (
    SQLITE_TIMEOUT,
    check_deploy,
    check_schedule,
    check_scheduler_lock,
    check_settings,
    check_sqlite,
)
from offchat_notify.conf import get_settings
from offchat_notify.models import Event, JobRun, Notification
from offchat_notify.schedule.jobs import get_jobs
from offchat_notify.scheduler.lock import get_lock

from .status import holder_label

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
    backend = get_backend()
    yield from _sqlite(backend.runs_in_worker)
    yield from backend.diagnose()
    yield from _scheduler(backend.runs_in_worker)


def _unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _backwards in plan]


def _sqlite(runs_in_worker: bool) -> Iterator[Finding]:
    """SQLite: fine for development; in production, and for workers, what it needs."""
    aliases = sorted({router.db_for_write(model) for model in (Event, Notification)})
    for alias in aliases:
        if connections[alias].vendor != "sqlite":
            continue
        if settings.DEBUG:
            yield Finding(
                OK,
                f"the database {alias!r} is SQLite: fine for development; production needs "
                "PostgreSQL",
            )
        else:
            yield Finding(
                WARNING,
                f"the database {alias!r} is SQLite, with DEBUG off: production needs PostgreSQL",
                "Use PostgreSQL (ENGINE 'django.db.backends.postgresql'): SQLite takes one "
                "writer at a time, so notify() and the deliveries wait for each other.",
            )
    if not runs_in_worker or not any(connections[a].vendor == "sqlite" for a in aliases):
        return
    problems = check_sqlite()  # W010, with the exact OPTIONS to set
    for message in problems:
        yield Finding(WARNING, f"{message.id}: {message.msg}", message.hint or "")
    if not problems:
        yield Finding(
            OK,
            "the workers wait for SQLite's write lock (IMMEDIATE transactions, "
            f"timeout {SQLITE_TIMEOUT} s)",
        )


def _scheduler(runs_in_worker: bool) -> Iterator[Finding]:
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
            # Without workers, the relay only re-sends what an in-process delivery
            # left undone: a missing scheduler is no emergency.
            yield Finding(
                ERROR if runs_in_worker else WARNING,
                "no scheduler is running (nobody holds the scheduler lock): the relay and "
                "retention do not run",
                "Start one: python manage.py notify_scheduler"
                + (
                    ""
                    if runs_in_worker
                    else f" (with the {get_settings().BACKEND} backend, the relay only "
                    "re-sends Events whose delivery failed or was cut off)"
                ),
            )
        else:
            yield Finding(OK, f"a scheduler is active on {holder_label(holder)}")
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
