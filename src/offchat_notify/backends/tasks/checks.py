"""System checks of the ``tasks`` backend: the Tasks framework, ``TASKS[ALIAS]``
and whether that backend takes and runs the library's tasks.

E013 no Tasks framework; E014 ``ALIAS`` names no usable backend of ``TASKS``;
E015 that backend refuses the library's tasks (most often: it does not serve
``QUEUE``); W009 it never runs them (``DummyBackend``); W003 (deploy) it runs
them in the process that enqueues them (``ImmediateBackend``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks

from . import config

PREFIX = "OFFCHAT_NOTIFY['OPTIONS']"


def check_setup(options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E013, E014, E015, W009 for these options (bad option values are E003)."""
    framework = config.find()
    if framework is None:
        return [checks.Error(config.MISSING, hint=config.MISSING_HINT, id="offchat_notify.E013")]
    merged = {**config.DEFAULTS, **options}
    if config.problems(merged):
        return []  # the backend refuses to be built: reported as E003
    alias, queue = merged["ALIAS"], merged["QUEUE"]
    backend, error = _tasks_backend(framework, alias)
    if error is not None:
        return [error]
    queues = sorted(getattr(backend, "queues", None) or ())
    if queues and queue not in queues:
        return [
            checks.Error(
                f"{PREFIX}['QUEUE'] is {queue!r}, a queue TASKS[{alias!r}] does not serve "
                f"(its QUEUES: {', '.join(map(repr, queues))}).",
                hint=f"Add {queue!r} to TASKS[{alias!r}]['QUEUES'], or set {PREFIX}['QUEUE'] "
                "to one of its queues.",
                id="offchat_notify.E015",
            )
        ]
    try:
        # Imported here: declaring the tasks validates them against TASKS[ALIAS],
        # which the checks above have just found usable.
        from .tasks import bind

        bind(alias, queue)
    except Exception as exc:
        return [
            checks.Error(
                f"TASKS[{alias!r}] ({type(backend).__name__}) refuses the library's tasks: {exc}",
                hint="The tasks are synchronous module-level functions with JSON arguments, "
                "default priority and no run_after; point ALIAS at a Tasks backend that "
                "accepts them.",
                id="offchat_notify.E015",
            )
        ]
    if isinstance(backend, framework.dummy):
        return [
            checks.Warning(
                f"TASKS[{alias!r}] is a DummyBackend, which keeps the tasks it is given and "
                "never runs them: no Event is delivered.",
                hint="Point ALIAS at a Tasks backend with a worker, or at an ImmediateBackend "
                "to deliver in-process.",
                id="offchat_notify.W009",
            )
        ]
    return []


def check_deploy(options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """W003: ``TASKS[ALIAS]`` runs tasks in the process that enqueues them, with DEBUG off."""
    framework = config.find()
    merged = {**config.DEFAULTS, **options}
    if framework is None or config.problems(merged) or settings.DEBUG:
        return []
    backend, error = _tasks_backend(framework, merged["ALIAS"])
    if error is not None or not isinstance(backend, framework.immediate):
        return []
    return [
        checks.Warning(
            f"OFFCHAT_NOTIFY['BACKEND'] is 'tasks' and TASKS[{merged['ALIAS']!r}] is an "
            "ImmediateBackend, which runs every job in the process that enqueues it, with "
            "DEBUG off: every request that notifies pays for the whole fan-out.",
            hint="Point OFFCHAT_NOTIFY['OPTIONS']['ALIAS'] at a Tasks backend with workers "
            "(for example django-tasks-db's DatabaseBackend, run by manage.py db_worker).",
            id="offchat_notify.W003",
        )
    ]


def _tasks_backend(
    framework: config.Framework, alias: str
) -> tuple[Any, checks.CheckMessage | None]:
    """``TASKS[alias]``, built; or E014 saying why it cannot be."""
    aliases = framework.task_backends.settings
    if not isinstance(aliases, Mapping):
        aliases = {}  # TASKS is not a dict of backends by alias
    if alias not in aliases:
        known = ", ".join(map(repr, sorted(aliases))) or "none"
        return None, checks.Error(
            f"{PREFIX}['ALIAS'] is {alias!r}, which is not a backend in Django's TASKS "
            f"setting (its aliases: {known}).",
            hint=f"Add {alias!r} to TASKS, or set {PREFIX}['ALIAS'] to one of its aliases.",
            id="offchat_notify.E014",
        )
    try:
        return framework.task_backends[alias], None
    except Exception as exc:
        detail = f"it has no {exc} key" if isinstance(exc, KeyError) else str(exc)
        return None, checks.Error(
            f"TASKS[{alias!r}] cannot be loaded: {detail}",
            hint=f"Correct TASKS[{alias!r}]['BACKEND'], or install the package that provides it.",
            id="offchat_notify.E014",
        )
