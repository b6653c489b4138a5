"""What ``manage.py notify_doctor`` says about a dramatiq setup at run time."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from django.db.models import Max
from django.utils import timezone

from offchat_notify.backends.base import ERROR, OK, WARNING, BrokerStats, Finding
from offchat_notify.models import Event

WORKER = "python manage.py rundramatiq --processes 2 --threads 4"
#: Seconds: delivery activity this recent shows a worker at work.
RECENT = 60


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


def last_activity_age() -> float | None:
    """Seconds since a worker last claimed, advanced or delivered an Event, if ever.

    A claim sets ``delivering``, every page written moves ``updated_at`` and
    finishing sets ``delivered``, so the newest ``updated_at`` of those two
    states is the last sign of a worker at work (two lookups on the state
    index). The relay and ``notify_retry`` only ever set ``queued``.
    """
    times = [
        Event.objects.filter(state=state).aggregate(t=Max("updated_at"))["t"]
        for state in (Event.State.DELIVERING, Event.State.DELIVERED)
    ]
    last = max((t for t in times if t is not None), default=None)
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
    yield workers(stats, last_activity_age())
    dead = sum(q.dead for q in stats.queues)
    if dead:
        yield Finding(
            WARNING,
            f"{dead} dead-lettered message(s)",
            "Poison or permanently failed jobs; see the worker logs. Failed Events can be "
            "re-run with manage.py notify_retry --failed.",
        )


def workers(stats: BrokerStats, active: float | None) -> Finding:
    """Whether a worker consumes, claimed only on evidence.

    The evidence: consumer counts (RabbitMQ counts them exactly), or delivery
    activity in the last :data:`RECENT` seconds (``active``: see
    :func:`last_activity_age`). Redis counts no consumers. Its heartbeats
    (``connected``) come from every process that sent or fetched lately, the
    web processes and the scheduler included, so they do not prove a worker;
    none at all proves there is none. Messages in flight do not prove one
    either: a worker that died holding messages leaves them in flight.
    """
    ready = sum(q.ready for q in stats.queues)
    in_flight = sum(q.in_flight or 0 for q in stats.queues)
    consumers = [q.consumers for q in stats.queues if q.consumers is not None]
    recent = active is not None and active <= RECENT
    since = "yet" if active is None else f"in {active:.0f}s"
    # Messages that wait make a missing worker an error; otherwise nothing is late yet.
    missing = ERROR if ready else WARNING
    unsure = (
        f"Check that a worker runs ({WORKER}), or send a notification and run notify_doctor again."
    )
    if consumers:
        if not any(consumers):
            return Finding(
                missing,
                f"no worker is consuming ({ready} message(s) waiting)",
                f"Start one: {WORKER}",
            )
        if ready and not recent:
            return Finding(
                WARNING,
                f"{sum(consumers)} worker(s) consuming, but {ready} message(s) wait and no "
                f"delivery activity {since}",
                "Workers may be stuck or saturated: see their logs, add workers.",
            )
        return Finding(OK, f"{sum(consumers)} worker(s) consuming ({ready} ready)")
    if stats.connected == 0:
        return Finding(
            missing,
            f"no worker seen: no process has a live {stats.kind} heartbeat "
            f"({ready} message(s) waiting)",
            f"Start one: {WORKER}",
        )
    if recent:
        return Finding(
            OK, f"a worker is at work: delivery activity {active:.0f}s ago ({ready} ready)"
        )
    if ready and in_flight:
        return Finding(
            WARNING,
            f"{ready} message(s) wait, {in_flight} in flight, and no delivery activity {since}: "
            "the workers are stuck, or died holding those messages",
            "See the workers' logs, and restart them: a dead worker's messages return to the "
            "queue when another worker starts.",
        )
    if ready:
        return Finding(
            ERROR,
            f"{ready} message(s) wait and no delivery activity {since}",
            f"Start a worker: {WORKER} (and check the workers' logs if one is running).",
        )
    if in_flight:
        return Finding(
            WARNING,
            f"cannot tell whether a worker runs: {in_flight} message(s) in flight but no "
            f"delivery activity {since} (a long periodic job, or a worker that died holding them)",
            unsure,
        )
    connected = (
        ""
        if stats.connected is None
        else f" ({stats.connected} process(es) connected to {stats.kind}: workers, or "
        "processes that sent)"
    )
    return Finding(
        WARNING,
        f"cannot tell whether a worker runs: no message waiting and no delivery activity "
        f"{since}{connected}",
        unsure,
    )
