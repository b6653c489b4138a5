"""The ``tasks`` backend's system checks (E013, E014, E015, W009, and W003 with
``--deploy``), compared exactly, and what ``notify_doctor`` says about it.

E013 runs everywhere (simulated where a Tasks framework is installed); the
others need ``django.tasks`` (Django 6.0+) or the django-tasks backport.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.test import override_settings

from offchat_notify.backends import get_backend
from offchat_notify.backends.tasks import TasksBackend, config
from offchat_notify.checks import check_deploy, check_settings
from offchat_notify.exceptions import NotifyConfigurationError

FRAMEWORK = getattr(settings, "TASKS_FRAMEWORK", None)
needs_framework = pytest.mark.skipif(
    FRAMEWORK is None, reason="no Tasks framework: Django 6.0+, or pip install django-tasks"
)
IMMEDIATE = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"
DUMMY = f"{FRAMEWORK}.backends.dummy.DummyBackend"
TASKS_BACKEND = {"BACKEND": "tasks"}


def tasks_setting(backend: str = IMMEDIATE, **params: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": backend, **params}}


def run_checks(options: dict[str, Any] | None = None) -> list[checks.CheckMessage]:
    with override_settings(OFFCHAT_NOTIFY={**TASKS_BACKEND, "OPTIONS": options or {}}):
        return check_settings()


@needs_framework
def test_a_working_setup_passes_the_checks():
    assert run_checks() == []


def test_e013_no_tasks_framework(monkeypatch):
    for name in config.FRAMEWORKS:
        monkeypatch.setitem(sys.modules, name, None)
    assert run_checks() == [
        checks.Error(
            "The 'tasks' backend needs Django's Tasks framework: django.tasks (Django 6.0 and "
            "later) or the django-tasks backport (Django 5.2), and neither can be imported.",
            hint='On Django 5.2, pip install "offchat-notify[tasks]" (the django-tasks '
            "backport); on Django 6.0 and later, django.tasks is built in.",
            id="offchat_notify.E013",
        )
    ]
    with pytest.raises(NotifyConfigurationError, match="neither can be imported"):
        TasksBackend()


@needs_framework
def test_e014_an_alias_not_in_tasks():
    with override_settings(TASKS={"default": {"BACKEND": IMMEDIATE}, "other": {"BACKEND": DUMMY}}):
        messages = run_checks({"ALIAS": "worker"})
    assert messages == [
        checks.Error(
            "OFFCHAT_NOTIFY['OPTIONS']['ALIAS'] is 'worker', which is not a backend in "
            "Django's TASKS setting (its aliases: 'default', 'other').",
            hint="Add 'worker' to TASKS, or set OFFCHAT_NOTIFY['OPTIONS']['ALIAS'] to one of "
            "its aliases.",
            id="offchat_notify.E014",
        )
    ]


@needs_framework
@pytest.mark.parametrize(
    ("tasks", "why"),
    [
        (
            tasks_setting("nowhere.Backend"),
            "Could not find backend 'nowhere.Backend': No module named 'nowhere'",
        ),
        ({"default": {"QUEUES": ["default"]}}, "it has no 'BACKEND' key"),
    ],
)
def test_e014_a_tasks_backend_that_does_not_load(tasks, why):
    with override_settings(TASKS=tasks):
        messages = run_checks()
    assert messages == [
        checks.Error(
            f"TASKS['default'] cannot be loaded: {why}",
            hint="Correct TASKS['default']['BACKEND'], or install the package that provides it.",
            id="offchat_notify.E014",
        )
    ]


@needs_framework
def test_e015_a_queue_the_tasks_backend_does_not_serve():
    with override_settings(TASKS=tasks_setting(QUEUES=["default", "emails"])):
        messages = run_checks({"QUEUE": "notifications"})
    assert messages == [
        checks.Error(
            "OFFCHAT_NOTIFY['OPTIONS']['QUEUE'] is 'notifications', a queue TASKS['default'] "
            "does not serve (its QUEUES: 'default', 'emails').",
            hint="Add 'notifications' to TASKS['default']['QUEUES'], or set "
            "OFFCHAT_NOTIFY['OPTIONS']['QUEUE'] to one of its queues.",
            id="offchat_notify.E015",
        )
    ]


if FRAMEWORK is not None:
    _immediate = importlib.import_module(f"{FRAMEWORK}.backends.immediate").ImmediateBackend

    class PickyBackend(_immediate):
        """A Tasks backend that takes coroutines only."""

        def validate_task(self, task: Any) -> None:
            raise ValueError("only async tasks, please")


@needs_framework
def test_e015_a_tasks_backend_that_refuses_the_tasks():
    with override_settings(TASKS=tasks_setting(f"{__name__}.PickyBackend")):
        messages = run_checks()
    assert messages == [
        checks.Error(
            "TASKS['default'] (PickyBackend) refuses the library's tasks: only async tasks, please",
            hint="The tasks are synchronous module-level functions with JSON arguments, "
            "default priority and no run_after; point ALIAS at a Tasks backend that accepts "
            "them.",
            id="offchat_notify.E015",
        )
    ]


@needs_framework
def test_w009_a_dummy_backend_never_runs_the_tasks():
    with override_settings(TASKS=tasks_setting(DUMMY), OFFCHAT_NOTIFY=TASKS_BACKEND):
        messages = check_settings()
        diagnosis = list(get_backend().diagnose())
    assert messages == [
        checks.Warning(
            "TASKS['default'] is a DummyBackend, which keeps the tasks it is given and never "
            "runs them: no Event is delivered.",
            hint="Point ALIAS at a Tasks backend with a worker, or at an ImmediateBackend to "
            "deliver in-process.",
            id="offchat_notify.W009",
        )
    ]
    assert [(f.level, f.title) for f in diagnosis] == [
        ("error", f"TASKS['default'] (DummyBackend, {FRAMEWORK}) keeps tasks and never runs them")
    ]


@needs_framework
def test_w003_an_immediate_backend_in_production():
    with override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND, DEBUG=False):
        messages = check_deploy()
        diagnosis = list(get_backend().diagnose())
    assert messages == [
        checks.Warning(
            "OFFCHAT_NOTIFY['BACKEND'] is 'tasks' and TASKS['default'] is an ImmediateBackend, "
            "which runs every job in the process that enqueues it, with DEBUG off: every "
            "request that notifies pays for the whole fan-out.",
            hint="Point OFFCHAT_NOTIFY['OPTIONS']['ALIAS'] at a Tasks backend with workers "
            "(for example django-tasks-db's DatabaseBackend, run by manage.py db_worker).",
            id="offchat_notify.W003",
        )
    ]
    assert [(f.level, f.title) for f in diagnosis] == [
        (
            "ok",
            f"TASKS['default'] (ImmediateBackend, {FRAMEWORK}) runs every job in the process "
            "that enqueues it",
        )
    ]
    with override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND, DEBUG=True):
        assert check_deploy() == []
