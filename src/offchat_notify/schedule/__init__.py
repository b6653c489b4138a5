"""The schedule: which periodic jobs run when (:mod:`.jobs`), and running one (:mod:`.runs`).

The scheduler process that ticks them, ``manage.py notify_scheduler``, is
:mod:`offchat_notify.scheduler`. This package imports nothing of it, so the
backends that run a job can use it without an import cycle.
"""

from __future__ import annotations

from .jobs import BUILTIN_JOBS, Job, check_cron, get_jobs, periodic

__all__ = ["BUILTIN_JOBS", "Job", "check_cron", "get_jobs", "periodic"]
