"""The scheduler process, ``manage.py notify_scheduler``: :mod:`.loop` ticks the
jobs while :mod:`.lock` makes it the one active scheduler.

What runs when is :mod:`offchat_notify.schedule`; :func:`periodic` is
importable from here too (and from ``offchat_notify``), where 0.1's docs
showed it.
"""

from __future__ import annotations

from offchat_notify.schedule.jobs import BUILTIN_JOBS, Job, get_jobs, periodic

__all__ = ["BUILTIN_JOBS", "Job", "get_jobs", "periodic"]
