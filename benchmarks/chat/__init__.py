"""A minimal host app for the benchmarks: a chat message, as in DESIGN.md section 2."""

from __future__ import annotations

from benchmarks import compat  # noqa: F401  (django-notifications-hq on Django 5.1+)
