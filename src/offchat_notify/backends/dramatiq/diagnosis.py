"""What ``manage.py notify_doctor`` says about a dramatiq setup at run time."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from django.db.models import Max
from django.utils import timezone

from offchat_notify.backends.base import ERROR, OK, WARNING, BrokerStats, Finding
from offchat_notify.models import Event

WORKER = "python manage.py rundramatiq --processes 2 --threads 4"


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


def last_claim_age() -> float | None:
    """Seconds since a delivery last started (a worker claimed an Event), if ever."""
    last = Event.objects.filter(started_at__isnull=False).aggregate(t=Max("started_at"))["t"]
    return None if last is None else (timezone.now() - last).total_seconds()


def diagnose(stats: BrokerStats | None) -> Iterator[Finding]:
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
            ERROR, f"no worker is consuming ({ready} message(s) waiting)", f"Start one: {WORKER}"
        )
    elif ready and not in_flight and (claimed is None or claimed > 60):
        since = "ever" if claimed is None else f"in {claimed:.0f}s"
        yield Finding(
            ERROR,
            f"{ready} message(s) wait and no worker has started a delivery {since}",
            f"Start a worker: {WORKER} (and check the workers' logs if one is running).",
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
