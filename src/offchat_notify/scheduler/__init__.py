"""Periodic jobs, and the process that runs them (``manage.py notify_scheduler``).

Host projects use :func:`periodic` (also importable from ``offchat_notify``).
:mod:`.jobs` says what runs when and :mod:`.runs` runs one; :mod:`.loop` and
:mod:`.lock` are the scheduler process and its single-leader lock, imported
only by the command.
"""

from __future__ import annotations

from .jobs import BUILTIN_JOBS, Job, get_jobs, periodic

__all__ = ["BUILTIN_JOBS", "Job", "get_jobs", "periodic"]
