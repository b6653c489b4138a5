"""End to end: the ``tasks`` backend, PostgreSQL, and real ``manage.py db_worker``
processes of django-tasks-db (the Tasks framework's database backend).

The tasks wait in django-tasks-db's table; each test uses a queue of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from offchat_notify import notify_admins
from offchat_notify.backends import get_backend
from offchat_notify.backends.base import DELIVER
from offchat_notify.models import Event, Notification
from tests.helpers import (
    ROOT,
    DbTaskWorker,
    assert_exactly_once,
    relay_until,
    require,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.worker]

TASKS = "offchat_notify.backends.tasks.tasks"


def db_results() -> Any:
    """django-tasks-db's task rows (imported once the fixtures found it installed)."""
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects


@pytest.fixture
def notify_settings(settings: Any) -> dict[str, Any]:
    """OFFCHAT_NOTIFY for this test and its workers: the tasks backend on the "db"
    alias, on a queue of the test's own; the relay re-sends after two seconds."""
    require(
        "django-tasks-db",
        find_spec("django_tasks_db") is not None and "db" in getattr(django_settings, "TASKS", {}),
        'pip install django-tasks-db (and "django-tasks" on Django 5.2)',
    )
    queue = f"offchat_{uuid.uuid4().hex[:12]}"  # django-tasks-db allows 32 characters
    settings.OFFCHAT_NOTIFY = {
        "BACKEND": "tasks",
        "RELAY_AFTER": 2,
        "OPTIONS": {"ALIAS": "db", "QUEUE": queue},
    }
    return settings.OFFCHAT_NOTIFY


@pytest.fixture
def start_db_worker(
    postgres: None, tmp_path: Path, notify_settings: dict[str, Any]
) -> Iterator[Callable[[], DbTaskWorker]]:
    """Start db_worker processes on the test database and the test's queue; stop them after."""
    from django.db import connection

    workers: list[DbTaskWorker] = []
    # The workers import the same offchat_notify as the tests (src/ when PYTHONPATH says so).
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    def start() -> DbTaskWorker:
        worker = DbTaskWorker(
            connection.settings_dict["NAME"],
            tmp_path / f"db-worker-{len(workers)}.log",
            queue=notify_settings["OPTIONS"]["QUEUE"],
            env={**worker_env(**notify_settings), "PYTHONPATH": pythonpath},
        )
        workers.append(worker.start())
        return worker.wait_ready()

    yield start
    for worker in workers:
        worker.stop()


def wait_delivered(event: Event, workers: list[DbTaskWorker], timeout: float = 60) -> Event:
    wait_for(
        lambda: Event.objects.filter(pk=event.pk, state=Event.State.DELIVERED).exists(),
        timeout=timeout,
        what=f"event {event.pk} to be delivered",
        on_fail=lambda: (
            f"Event: {Event.objects.filter(pk=event.pk).values().first()}\n"
            f"Tasks: {list(db_results().values('task_path', 'status', 'traceback'))}\n"
            + "\n".join(f"Worker output:\n{w.output()[-4000:]}" for w in workers)
        ),
    )
    return Event.objects.get(pk=event.pk)


def wait_all_finished(workers: list[DbTaskWorker], timeout: float = 60) -> None:
    wait_for(
        lambda: not db_results().exclude(status__in=["SUCCESSFUL", "FAILED"]).exists(),
        timeout=timeout,
        what="every task to finish",
        on_fail=lambda: "\n".join(w.output()[-4000:] for w in workers),
    )


def rows(event: Event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


def test_a_db_worker_delivers_to_every_admin_once(start_db_worker, make_users):
    # Given 50 admins and a db_worker
    admins = make_users(50, group="admin")
    worker = start_db_worker()
    # When
    event = notify_admins("message.sent", title="hello")
    # Then the worker ran one deliver_event task, which wrote one row per admin
    event = wait_delivered(event, [worker])
    assert rows(event) == [u.pk for u in admins]
    assert event.recipient_count == 50
    assert event.attempts == 1
    wait_all_finished([worker])
    assert list(db_results().values_list("task_path", "args_kwargs", "status")) == [
        (f"{TASKS}.deliver_event", {"args": [event.pk], "kwargs": {}}, "SUCCESSFUL")
    ]


def test_a_lost_task_is_sent_again_by_the_relay_and_delivered_once(start_db_worker, make_users):
    # Given an Event whose task the Tasks backend lost (its row deleted before a worker ran it)
    admins = make_users(50, group="admin")
    event = notify_admins("message.sent")
    assert db_results().filter(task_path=f"{TASKS}.deliver_event").delete()[0] == 1
    worker = start_db_worker()
    # When the relay runs, as notify_scheduler runs it every few seconds
    relayed: list[int] = []
    relay_until(
        lambda: Event.objects.filter(pk=event.pk, state=Event.State.DELIVERED).exists(),
        timeout=60,
        what=f"event {event.pk} to be relayed and delivered",
        interval=0.5,
        on_fail=worker.output,
        relayed=relayed,
    )
    # Then it re-sent the Event, and the worker delivered it exactly once
    assert set(relayed) == {event.pk}
    assert_exactly_once([event.pk], [u.pk for u in admins])
    assert Event.objects.get(pk=event.pk).attempts == 1


def test_the_same_task_run_twice_writes_no_duplicate_rows(start_db_worker, make_users):
    # Given an Event whose deliver task is enqueued twice, and two workers to race on it
    admins = make_users(50, group="admin")
    event = notify_admins("message.sent")
    get_backend().enqueue(DELIVER, event.pk)
    workers = [start_db_worker(), start_db_worker()]
    event = wait_delivered(event, workers)
    wait_all_finished(workers)
    # When one of the finished tasks is run once more
    first = db_results().filter(task_path=f"{TASKS}.deliver_event").first()
    db_results().filter(pk=first.pk).update(status="READY", finished_at=None)
    wait_all_finished(workers)
    # Then every task succeeded, and each admin has exactly one row
    statuses = list(db_results().values_list("status", flat=True))
    assert statuses == ["SUCCESSFUL", "SUCCESSFUL"]
    assert_exactly_once([event.pk], [u.pk for u in admins])
    assert Event.objects.get(pk=event.pk).attempts == 1


def test_a_large_event_is_shared_by_two_db_workers_in_chunk_tasks(
    settings, notify_settings, start_db_worker, make_users
):
    # Given chunks of 20 recipients: the worker writes the first page of 10, then
    # enqueues three chunk tasks for the other 50
    notify_settings.update(PARALLEL_CHUNK=20, PAGE_SIZE=10)
    settings.OFFCHAT_NOTIFY = notify_settings
    admins = make_users(60, group="admin")
    workers = [start_db_worker(), start_db_worker()]
    # When
    event = notify_admins("message.sent")
    # Then
    event = wait_delivered(event, workers)
    assert rows(event) == [u.pk for u in admins]
    assert event.chunks.filter(done_at__isnull=False).count() == 3
    wait_all_finished(workers)
    chunk_tasks = db_results().filter(task_path=f"{TASKS}.deliver_chunk")
    assert sorted(r["args"] for r in chunk_tasks.values_list("args_kwargs", flat=True)) == [
        [event.pk, 0],
        [event.pk, 1],
        [event.pk, 2],
    ]
    assert set(chunk_tasks.values_list("status", flat=True)) == {"SUCCESSFUL"}
