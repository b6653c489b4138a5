"""The library's jobs as Django Tasks, one task per job.

A Tasks worker finds a task by the dotted path stored with it
(``offchat_notify.backends.tasks.tasks.deliver_event`` and the two others).
These paths never change, so tasks waiting in a queue survive an upgrade.
Each task takes JSON-safe arguments only (ids and names; the database holds the
rest) and runs its job with :func:`offchat_notify.backends.jobs.run`.

Declaring a task validates it against the Tasks backend it names, so this
module is imported only when the ``tasks`` backend is built or checked, and by
a Tasks worker that runs one of these tasks; never at the import of anything a
host project imports. The tasks are declared on the configured ``ALIAS`` and
``QUEUE`` (:func:`declared`); the backend enqueues them on its own options with
``Task.using()`` in any case.
"""

from __future__ import annotations

from typing import Any

from offchat_notify.backends import get_backend, load_backend
from offchat_notify.backends.base import DELIVER, DELIVER_CHANNEL, DELIVER_CHUNK, RUN_JOB
from offchat_notify.backends.jobs import run
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import NotifyConfigurationError, PoisonMessage

from . import TasksBackend
from .config import DEFAULTS, Task, problems, require


def declared() -> tuple[str, str]:
    """The alias and queue to declare the tasks on: the ``tasks`` backend's
    options when it is the configured backend, else the defaults.

    Declaring only has to name a Tasks backend that exists and serves the
    queue, as the configured ones do once ``manage.py check`` passes.
    """
    try:
        conf = get_settings()
        options = conf.OPTIONS if issubclass(load_backend(conf.backend_path), TasksBackend) else {}
    except NotifyConfigurationError:  # reported by manage.py check
        options = {}
    merged = {**DEFAULTS, **options}
    if problems(merged):
        merged = DEFAULTS
    return merged["ALIAS"], merged["QUEUE"]


task = require().task
ALIAS, QUEUE = declared()


def _run(job: str, *args: Any) -> Any:
    """Run ``job`` here; the jobs it spawns go to the configured backend."""
    return run(job, args, enqueue=get_backend().enqueue)


@task(backend=ALIAS, queue_name=QUEUE)
def deliver_event(event_id: int) -> None:
    """Deliver one Event, or plan its chunks and enqueue them.

    An Event id the database does not hold fails the task with
    :exc:`~offchat_notify.exceptions.PoisonMessage`, so the Tasks backend
    records it as failed.
    """
    if _run(DELIVER, event_id) is None:
        raise PoisonMessage(f"No Event with id {event_id!r}.")


@task(backend=ALIAS, queue_name=QUEUE)
def deliver_chunk(event_id: int, index: int) -> None:
    """Deliver one chunk of a large Event: the Event id and the chunk index."""
    if _run(DELIVER_CHUNK, event_id, index) is None:
        raise PoisonMessage(f"No chunk {index!r} of Event {event_id!r}.")


@task(backend=ALIAS, queue_name=QUEUE)
def run_job(name: str) -> None:
    """Run one periodic job by name, for ``manage.py notify_scheduler``."""
    _run(RUN_JOB, name)


@task(backend=ALIAS, queue_name=QUEUE)
def deliver_channel(event_id: int, channel: str) -> None:
    """Send one channel of an Event (its emails or web pushes); a transient error fails the task
    and leaves the sends pending, for the relay."""
    if _run(DELIVER_CHANNEL, event_id, channel) is None:
        raise PoisonMessage(f"No Event with id {event_id!r}.")


#: The tasks by job name.
TASKS: dict[str, Task] = {
    DELIVER: deliver_event,
    DELIVER_CHUNK: deliver_chunk,
    RUN_JOB: run_job,
    DELIVER_CHANNEL: deliver_channel,
}


def bind(alias: str, queue: str) -> dict[str, Task]:
    """The tasks by job name, bound to the Tasks backend ``alias`` and ``queue``.

    Raises what the Tasks framework raises when that backend does not exist or
    refuses the tasks (``InvalidTaskBackend``, ``InvalidTask``).
    """
    return {job: t.using(backend=alias, queue_name=queue) for job, t in TASKS.items()}
