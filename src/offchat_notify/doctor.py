"""Diagnose a setup: each finding says what is wrong and how to fix it.

Used by ``manage.py notify_doctor``. The checks run in the order a new user
meets the problems, and stop early where the rest could not be judged.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclasses.dataclass
class Finding:
    level: str
    title: str
    fix: str = ""


def diagnose() -> Iterator[Finding]:
    from .checks import (
        check_broker_for_production,
        check_deploy,
        check_schedule,
        check_scheduler_lock,
        check_settings,
    )

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
    from .conf import get_settings

    conf = get_settings()
    yield Finding(OK, f"backend {conf.BACKEND!r} loads")
    if not settings.DEBUG:
        for message in check_deploy() + check_broker_for_production() + check_scheduler_lock():
            yield Finding(WARNING, f"{message.id}: {message.msg}", message.hint or "")
    if conf.BACKEND == "dramatiq":
        yield from _broker()
    yield from _scheduler()


def _unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _backwards in plan]


def start_command(kind: str) -> str:
    """How to start the broker locally, on this platform."""
    if kind == "redis":
        if sys.platform == "darwin":
            return "brew services start redis"
        if sys.platform.startswith("win"):
            return (
                "Redis has no native Windows server: in WSL run `sudo service redis-server "
                "start`, or run Memurai, or `docker run -d -p 6379:6379 redis`"
            )
        return "sudo systemctl start redis-server   (or: redis-server --daemonize yes)"
    if kind == "rabbitmq":
        if sys.platform == "darwin":
            return "brew services start rabbitmq"
        if sys.platform.startswith("win"):
            return "net start RabbitMQ   (from an administrator prompt)"
        return "sudo systemctl start rabbitmq-server   (or: rabbitmq-server -detached)"
    return "start your broker"


def _broker() -> Iterator[Finding]:
    from .status import broker_stats, last_claim_age

    stats = broker_stats()
    if stats is None:
        return
    if not stats.reachable:
        yield Finding(
            ERROR,
            f"the {stats.kind} broker does not answer: {stats.error}",
            f"Start it: {start_command(stats.kind)}. Then check DRAMATIQ_BROKER['OPTIONS'].",
        )
        return
    yield Finding(OK, f"the {stats.kind} broker answers")
    ready = sum(q.ready for q in stats.queues)
    in_flight = sum(q.in_flight or 0 for q in stats.queues)
    consumers = [q.consumers for q in stats.queues if q.consumers is not None]
    claimed = last_claim_age()
    if consumers and not any(consumers):
        # RabbitMQ knows its consumers exactly.
        yield Finding(
            ERROR,
            f"no worker is consuming ({ready} message(s) waiting)",
            "Start one: python manage.py rundramatiq --processes 2 --threads 4",
        )
    elif ready and not in_flight and (claimed is None or claimed > 60):
        since = "ever" if claimed is None else f"in {claimed:.0f}s"
        yield Finding(
            ERROR,
            f"{ready} message(s) wait and no worker has started a delivery {since}",
            "Start a worker: python manage.py rundramatiq --processes 2 --threads 4 "
            "(and check the workers' logs if one is running).",
        )
    else:
        yield Finding(OK, f"workers are consuming ({ready} ready, {in_flight} in flight)")
    dead = sum(q.dead for q in stats.queues)
    if dead:
        yield Finding(
            WARNING,
            f"{dead} dead-lettered message(s)",
            "Poison or permanently failed jobs; see the worker logs. Failed Events can be "
            "re-run with manage.py notify_retry --failed.",
        )


def _scheduler() -> Iterator[Finding]:
    from .leader import get_lock
    from .models import JobRun
    from .scheduler import get_jobs

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
