"""The ``tasks`` backend on the Tasks framework's ImmediateBackend: delivery, chunks,
periodic jobs and options. Its system checks: test_backend_tasks_checks.py.

The framework is ``django.tasks`` on Django 6.0+, the django-tasks backport on
Django 5.2; the module is skipped where neither is installed.
"""

from __future__ import annotations

import importlib
from typing import Any

import django
import pytest
from django.conf import settings
from django.test import override_settings

from offchat_notify import notify_admins
from offchat_notify.backends import get_backend
from offchat_notify.backends.base import DELIVER, DELIVER_CHUNK, RUN_JOB
from offchat_notify.backends.tasks import TasksBackend
from offchat_notify.exceptions import NotifyConfigurationError, PoisonMessage
from offchat_notify.models import Event, JobRun, Notification
from tests.testapp import jobs

FRAMEWORK = getattr(settings, "TASKS_FRAMEWORK", None)
if FRAMEWORK is None:
    pytest.skip(
        "no Tasks framework: Django 6.0+, or pip install django-tasks", allow_module_level=True
    )

pytestmark = pytest.mark.django_db(transaction=True)

IMMEDIATE = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"
TASKS_BACKEND = {"BACKEND": "tasks"}


def tasks_setting(backend: str = IMMEDIATE, **params: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": backend, **params}}


@pytest.fixture
def enqueued() -> Any:
    """The tasks the framework enqueues during the test: (task path, args)."""
    signals = importlib.import_module(f"{FRAMEWORK}.signals")
    seen: list[tuple[str, list[Any]]] = []

    def record(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((task_result.task.module_path, list(task_result.args)))

    signals.task_enqueued.connect(record)
    yield seen
    signals.task_enqueued.disconnect(record)


def rows(event: Event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


def path(name: str) -> str:
    return f"offchat_notify.backends.tasks.tasks.{name}"


# Delivery


def test_the_backend_uses_django_tasks_on_django_6_and_the_backport_before():
    with override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND):
        backend = get_backend()
    assert isinstance(backend, TasksBackend)
    expected = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
    assert backend.framework.module == expected
    assert backend.immediate
    assert type(backend.tasks_backend).__module__.startswith(expected)


@override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND)
def test_notify_delivers_through_a_task(make_users, enqueued):
    admins = make_users(4, group="admin")
    event = notify_admins("message.sent", title="hi")
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED
    assert rows(event) == [u.pk for u in admins]
    assert event.attempts == 1
    assert enqueued == [(path("deliver_event"), [event.pk])]


@override_settings(OFFCHAT_NOTIFY={**TASKS_BACKEND, "PARALLEL_CHUNK": 2, "PAGE_SIZE": 2})
def test_a_large_event_is_delivered_in_chunk_tasks(make_users, enqueued):
    admins = make_users(5, group="admin")
    event = notify_admins("message.sent")
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED
    assert rows(event) == [u.pk for u in admins]
    # The deliver task writes the first page (2), then plans 2 + 1 in chunk tasks.
    assert event.chunks.filter(done_at__isnull=False).count() == 2
    assert enqueued == [
        (path("deliver_event"), [event.pk]),
        *((path("deliver_chunk"), [event.pk, index]) for index in range(2)),
    ]


def test_a_periodic_job_runs_as_a_task(enqueued):
    schedule = {"record": {"task": "tests.testapp.jobs.record", "every": 60}}
    jobs.calls.clear()
    with override_settings(OFFCHAT_NOTIFY={**TASKS_BACKEND, "SCHEDULE": schedule}):
        get_backend().enqueue(RUN_JOB, "record")
    assert len(jobs.calls) == 1
    assert JobRun.objects.get(name="record").runs == 1
    assert enqueued == [(path("run_job"), ["record"])]


@override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND)
def test_a_task_run_twice_writes_nothing_twice(make_users):
    admins = make_users(3, group="admin")
    event = notify_admins("message.sent")
    get_backend().enqueue(DELIVER, event.pk)
    get_backend().tasks[DELIVER].call(event.pk)
    event.refresh_from_db()
    assert rows(event) == [u.pk for u in admins]
    assert event.attempts == 1


@override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND)
def test_a_task_for_an_event_the_database_lacks_fails_as_poison():
    backend = get_backend()
    with pytest.raises(PoisonMessage, match=r"^No Event with id 999999\.$"):
        backend.tasks[DELIVER].call(999_999)
    with pytest.raises(PoisonMessage, match=r"^No chunk 0 of Event 999999\.$"):
        backend.tasks[DELIVER_CHUNK].call(999_999, 0)


@override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND)
@pytest.mark.parametrize(
    ("job", "args", "message"),
    [
        ("deliver", ("1",), "Not a deliver job"),
        ("deliver_chunk", (1,), "Not a deliver_chunk job"),
        ("send", (1,), "Unknown job 'send'"),
    ],
)
def test_enqueue_refuses_a_malformed_job_before_the_queue(job, args, message, enqueued):
    # The messages are jobs.check_args's, tested with it; here: they are raised, at once.
    with pytest.raises(PoisonMessage, match=f"^{message}"):
        get_backend().enqueue(job, *args)
    assert enqueued == []


class RefusingBackend(importlib.import_module(IMMEDIATE.rsplit(".", 1)[0]).ImmediateBackend):
    """A Tasks backend whose queue is down."""

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        raise ConnectionError("the task queue is down")


@override_settings(OFFCHAT_NOTIFY=TASKS_BACKEND, TASKS=tasks_setting(f"{__name__}.RefusingBackend"))
def test_a_refused_task_raises_for_the_relay_and_leaves_the_event_pending(make_users, caplog):
    make_users(2, group="admin")
    event = notify_admins("message.sent")  # the hand-off fails after commit; notify() does not
    event.refresh_from_db()
    assert event.state == Event.State.PENDING
    assert f"could not take event {event.pk} (the task queue is down)" in caplog.text
    with pytest.raises(ConnectionError, match="the task queue is down"):
        get_backend().enqueue(DELIVER, event.pk)


# Options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"BROKER": "x"},
            "OFFCHAT_NOTIFY['OPTIONS']: TasksBackend takes no option 'BROKER' "
            "(its options: ALIAS, QUEUE).",
        ),
        (
            {"ALIAS": ""},
            "OFFCHAT_NOTIFY['OPTIONS']['ALIAS'] must be a non-empty string, the alias of a "
            "backend in Django's TASKS setting, not ''. Default: 'default'.",
        ),
        (
            {"QUEUE": 7},
            "OFFCHAT_NOTIFY['OPTIONS']['QUEUE'] must be a non-empty string, a queue name of "
            "that Tasks backend, not 7. Default: 'default'.",
        ),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(NotifyConfigurationError) as info:
        TasksBackend(options)
    assert str(info.value) == message


def test_the_backend_enqueues_on_its_alias_and_queue(enqueued):
    tasks = {
        "default": {"BACKEND": IMMEDIATE},
        "inline": {"BACKEND": IMMEDIATE, "QUEUES": ["notifications"]},
    }
    with override_settings(TASKS=tasks):
        backend = TasksBackend({"ALIAS": "inline", "QUEUE": "notifications"})
        assert {(t.backend, t.queue_name) for t in backend.tasks.values()} == {
            ("inline", "notifications")
        }
        assert repr(backend) == "<TasksBackend 'inline'/'notifications'>"


def test_the_tasks_are_declared_on_the_configured_alias():
    from offchat_notify.backends.tasks.tasks import declared

    tasks = {"only": {"BACKEND": IMMEDIATE, "QUEUES": ["q"]}}
    options = {"ALIAS": "only", "QUEUE": "q"}
    with override_settings(TASKS=tasks, OFFCHAT_NOTIFY={**TASKS_BACKEND, "OPTIONS": options}):
        assert declared() == ("only", "q")
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "OPTIONS": {"QUEUE": "x"}}):
        assert declared() == ("default", "default")


def test_building_on_a_missing_alias_says_what_to_do():
    with pytest.raises(NotifyConfigurationError) as info:
        TasksBackend({"ALIAS": "nope"})
    assert str(info.value).startswith(
        "The 'tasks' backend cannot enqueue on TASKS['nope'], queue 'default': "
    )
    assert str(info.value).endswith(". Run manage.py check for how to fix it.")
