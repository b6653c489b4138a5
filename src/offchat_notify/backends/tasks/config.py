"""What the ``tasks`` backend is configured with: its options, and the Tasks
framework it finds.

The framework is ``django.tasks`` on Django 6.0 and later, else the django-tasks
backport (``django_tasks``) on Django 5.2. Tasks backends such as django-tasks-db
make the same choice, so the library's tasks and the backend that runs them
always come from one framework.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, Protocol

from offchat_notify.exceptions import NotifyConfigurationError

#: The options and their defaults: the alias in Django's ``TASKS`` setting to
#: enqueue on, and the Tasks queue name.
DEFAULTS: dict[str, Any] = {"ALIAS": "default", "QUEUE": "default"}

#: The frameworks, in order of preference.
FRAMEWORKS = ("django.tasks", "django_tasks")

MISSING = (
    "The 'tasks' backend needs Django's Tasks framework: django.tasks (Django 6.0 and "
    "later) or the django-tasks backport (Django 5.2), and neither can be imported."
)
MISSING_HINT = (
    'On Django 5.2, pip install "offchat-notify[tasks]" (the django-tasks backport); '
    "on Django 6.0 and later, django.tasks is built in."
)


class Task(Protocol):
    """What this backend uses of a framework's ``Task`` (a declared task)."""

    backend: str
    queue_name: str

    def using(self, *, backend: str | None = None, queue_name: str | None = None) -> Task: ...

    def enqueue(self, *args: Any) -> Any: ...

    def call(self, *args: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Framework:
    """The parts of a Tasks framework this backend uses."""

    module: str  # "django.tasks" or "django_tasks"
    task_backends: Any  # the connection handler of the TASKS setting
    task: Callable[..., Callable[[Callable[..., Any]], Task]]  # the @task decorator
    immediate: type  # ImmediateBackend: runs a task when it is enqueued
    dummy: type  # DummyBackend: keeps tasks and never runs them


def find() -> Framework | None:
    """The first Tasks framework of :data:`FRAMEWORKS` that imports, or ``None``."""
    for name in FRAMEWORKS:
        try:
            module = importlib.import_module(name)
            immediate = importlib.import_module(f"{name}.backends.immediate").ImmediateBackend
            dummy = importlib.import_module(f"{name}.backends.dummy").DummyBackend
        except ImportError:
            continue
        return Framework(name, module.task_backends, module.task, immediate, dummy)
    return None


def require() -> Framework:
    """The Tasks framework; raises :exc:`NotifyConfigurationError` if there is none."""
    framework = find()
    if framework is None:
        raise NotifyConfigurationError(f"{MISSING} {MISSING_HINT}")
    return framework


def problems(merged: dict[str, Any]) -> list[str]:
    """What is wrong with the values of ``merged`` (the options over :data:`DEFAULTS`)."""
    what = {
        "ALIAS": "the alias of a backend in Django's TASKS setting",
        "QUEUE": "a queue name of that Tasks backend",
    }
    return [
        f"OFFCHAT_NOTIFY['OPTIONS'][{key!r}] must be a non-empty string, {what[key]}, "
        f"not {merged[key]!r}. Default: {DEFAULTS[key]!r}."
        for key in DEFAULTS
        if not isinstance(merged[key], str) or not merged[key]
    ]
