"""One snapshot of the whole pipeline: broker, queues, Events, jobs, scheduler, rate.

Shared by ``manage.py notify_status``, the admin dashboard and the health
endpoint, so they always agree. Everything is read with cheap, indexed queries.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from django.db.models import Count, Min, Sum
from django.utils import timezone

from offchat_notify.backends import get_backend
from offchat_notify.backends.base import BrokerStats
from offchat_notify.conf import get_settings
from offchat_notify.models import ChannelSend, Event, JobRun, Notification
from offchat_notify.scheduler.lock import get_lock

#: The window of "recent delivery rate".
RATE_WINDOW = timedelta(minutes=5)


@dataclasses.dataclass
class Status:
    backend: str
    broker: BrokerStats | None
    events: dict[str, int]
    oldest_pending_age: float | None  # seconds
    in_progress: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    scheduler: str
    delivered_recently: int  # notifications written by Events delivered in RATE_WINDOW
    rate_per_second: float
    taken_at: str
    #: Channel sends by channel, then state: {"email": {"pending": 3, "sent": 120}}.
    channel_sends: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def broker_stats(*, detail: bool = True) -> BrokerStats | None:
    """The backend's queue, or None when the backend does not report one."""
    return get_backend().status(detail=detail)


def event_counts() -> dict[str, int]:
    counts = dict.fromkeys(Event.State.values, 0)
    for row in Event.objects.order_by().values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    return counts


def oldest_pending_age() -> float | None:
    """Seconds since the oldest Event not yet delivered (nor failed) was created."""
    waiting = (Event.State.PENDING, Event.State.QUEUED, Event.State.DELIVERING)
    oldest = Event.objects.filter(state__in=waiting).aggregate(t=Min("created_at"))["t"]
    return None if oldest is None else (timezone.now() - oldest).total_seconds()


def in_progress(limit: int = 10) -> list[dict[str, Any]]:
    """Events being delivered now, with the rows written so far."""
    events = Event.objects.filter(state=Event.State.DELIVERING).order_by("started_at")[:limit]
    return [
        {
            "id": e.pk,
            "verb": e.verb,
            "written": Notification.objects.filter(event_id=e.pk).count(),
            "attempts": e.attempts,
            "started_at": e.started_at.isoformat() if e.started_at else None,
            "last_progress_s": round((timezone.now() - e.updated_at).total_seconds(), 1),
        }
        for e in events
    ]


def job_runs() -> list[dict[str, Any]]:
    return [
        {
            "name": run.name,
            "last_started_at": run.last_started_at.isoformat(),
            "last_duration_ms": run.last_duration_ms,
            "last_error": run.last_error,
            "runs": run.runs,
            "age_s": round((timezone.now() - run.last_started_at).total_seconds(), 1),
        }
        for run in JobRun.objects.all()
    ]


def scheduler_holder() -> str:
    """Which scheduler is active: the lock holder (host:pid:token), or why none is known."""
    try:
        lock = get_lock()
    except Exception as exc:
        return f"unknown (lock misconfigured: {exc})"
    if not lock.locked:
        return "unknown (no scheduler lock configured)"
    try:
        return lock.holder() or "none (no scheduler holds the lock)"
    except Exception as exc:
        return f"unknown (lock unreachable: {exc})"
    finally:
        lock.close()


def holder_label(holder: str) -> str:
    """``host vm, pid 15795`` for a lock holder's token (``vm:15795:e820968e``);
    anything else (``none (...)``, ``unknown (...)``) as it is."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if not host or not pid.isdigit() or " " in holder:
        return holder
    return f"host {host}, pid {pid}"


def snapshot() -> Status:
    since = timezone.now() - RATE_WINDOW
    recent = (
        Event.objects.filter(state=Event.State.DELIVERED, updated_at__gte=since).aggregate(
            n=Sum("recipient_count")
        )["n"]
        or 0
    )
    return Status(
        backend=get_settings().BACKEND,
        broker=broker_stats(),
        events=event_counts(),
        oldest_pending_age=oldest_pending_age(),
        in_progress=in_progress(),
        jobs=job_runs(),
        scheduler=scheduler_holder(),
        delivered_recently=recent,
        rate_per_second=round(recent / RATE_WINDOW.total_seconds(), 1),
        taken_at=timezone.now().isoformat(),
        channel_sends=channel_send_counts(),
    )


def channel_send_counts() -> dict[str, dict[str, int]]:
    """Channel sends by channel and state."""
    rows = ChannelSend.objects.values_list("channel", "state").order_by().annotate(n=Count("id"))
    found: dict[str, dict[str, int]] = {}
    for channel, state, n in rows:
        found.setdefault(channel, {})[state] = n
    return found
