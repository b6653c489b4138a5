"""Running a periodic job by name, and recording the run (for status and the admin)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from offchat_notify.exceptions import NotifyConfigurationError
from offchat_notify.models import JobRun

from .jobs import get_jobs

logger = logging.getLogger(__name__)


def run_job(name: str) -> Any:
    """Run the job ``name`` now, in this process. The worker's and the scheduler's path."""
    jobs = get_jobs()
    if name not in jobs:
        raise NotifyConfigurationError(f"No periodic job named {name!r}; known: {sorted(jobs)}.")
    job = jobs[name]
    func = import_string(job.task)
    started = timezone.now()
    logger.debug("Running periodic job %s (%s).", name, job.task)
    try:
        result = func()
    except Exception as exc:
        _record_run(name, started, error=f"{type(exc).__name__}: {exc}")
        raise
    duration_ms = _record_run(name, started)
    logger.debug("Periodic job %s finished in %d ms.", name, duration_ms)
    return result


def _record_run(name: str, started: datetime, error: str = "") -> int:
    """Remember the run in the database, for notify_status and the admin."""
    finished = timezone.now()
    duration_ms = int((finished - started).total_seconds() * 1000)
    fields = {
        "last_started_at": started,
        "last_finished_at": finished,
        "last_duration_ms": duration_ms,
        "last_error": error[:10_000],
    }
    try:
        if not JobRun.objects.filter(name=name).update(runs=F("runs") + 1, **fields):
            JobRun.objects.get_or_create(name=name, defaults={**fields, "runs": 1})
    except Exception:  # the record is a convenience; the job's own outcome matters
        logger.exception("Could not record the run of periodic job %s.", name)
    return duration_ms
