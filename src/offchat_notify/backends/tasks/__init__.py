"""The ``tasks`` backend: jobs go to Django's Tasks framework, run by its workers.

Everything Tasks-specific lives in this package: the backend, its options and
the framework it finds (``config``), its system checks (``checks``) and the
tasks themselves (``tasks``), which a Tasks worker imports by their dotted paths.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from offchat_notify import metrics
from offchat_notify.backends.base import DELIVER, ERROR, OK, BaseBackend, Finding
from offchat_notify.backends.jobs import check_args
from offchat_notify.exceptions import NotifyConfigurationError

from . import checks, config


class TasksBackend(BaseBackend):
    """Enqueue each job as a Django Task: ``django.tasks`` on Django 6.0 and later,
    the django-tasks backport (``django_tasks``) on Django 5.2.

    Options:

    * ``ALIAS``: the backend of Django's ``TASKS`` setting to enqueue on
      (default ``"default"``);
    * ``QUEUE``: the Tasks queue name (default ``"default"``); it must be one of
      that backend's ``QUEUES``, and the workers must serve it.

    ``enqueue()`` raises whatever the Tasks backend raises when it cannot
    take a task (its database or broker down, a task it refuses), so the relay
    tries again later; ``notify()`` only logs it, and the Event stays
    ``pending`` for the relay. A task that a Tasks backend loses is re-sent by
    the relay; a task run twice writes nothing twice.

    ``runs_in_worker`` is ``True``, as for the Tasks backends with workers. If
    ``TASKS[ALIAS]`` is an ``ImmediateBackend``, every job runs in the process
    that enqueues it instead (``immediate`` says so): ``manage.py check
    --deploy`` then warns (W003), as for the ``sync`` backend, and
    ``notify_doctor`` says so. ``reports_queue`` is ``False``: the Tasks
    framework has no API to count what a queue holds.
    """

    runs_in_worker = True
    reports_queue = False
    default_options = config.DEFAULTS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.framework = config.require()
        self.alias: str = self.options["ALIAS"]
        self.queue: str = self.options["QUEUE"]
        try:
            # Imported here, not at the top: declaring the tasks validates them
            # against the configured Tasks backend (see the docstring of .tasks).
            from .tasks import bind

            self.tasks = bind(self.alias, self.queue)
        except NotifyConfigurationError:
            raise
        except Exception as exc:  # InvalidTaskBackend, InvalidTask
            raise NotifyConfigurationError(
                f"The 'tasks' backend cannot enqueue on TASKS[{self.alias!r}], queue "
                f"{self.queue!r}: {str(exc).rstrip('.')}. Run manage.py check for how to fix it."
            ) from exc

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[str]:
        return super().option_problems(options) + config.problems({**config.DEFAULTS, **options})

    def enqueue(self, job: str, *args: Any) -> None:
        check_args(job, args)  # a malformed job never reaches the queue
        self.tasks[job].enqueue(*args)
        if job == DELIVER:
            metrics.dispatched("tasks")

    @property
    def tasks_backend(self) -> Any:
        """The Tasks backend ``TASKS[ALIAS]`` (one instance per thread)."""
        return self.framework.task_backends[self.alias]

    @property
    def immediate(self) -> bool:
        """``TASKS[ALIAS]`` runs each task when it is enqueued, in the enqueuing process."""
        return isinstance(self.tasks_backend, self.framework.immediate)

    @classmethod
    def check(cls, options: Mapping[str, Any], **kwargs: Any) -> list[Any]:
        return checks.check_setup(options)

    @classmethod
    def check_deploy(cls, options: Mapping[str, Any], **kwargs: Any) -> list[Any]:
        return checks.check_deploy(options)

    def diagnose(self) -> Iterator[Finding]:
        backend = self.tasks_backend
        where = f"TASKS[{self.alias!r}] ({type(backend).__name__}, {self.framework.module})"
        if isinstance(backend, self.framework.dummy):
            yield Finding(
                ERROR,
                f"{where} keeps tasks and never runs them",
                "Point OFFCHAT_NOTIFY['OPTIONS']['ALIAS'] at a Tasks backend with workers.",
            )
        elif self.immediate:
            # With DEBUG off, notify_doctor also reports check_deploy's W003 about it.
            yield Finding(
                OK,
                f"{where} runs every job in the process that enqueues it",
                "Fine for development; in production use a Tasks backend with workers.",
            )
        else:
            yield Finding(
                OK,
                f"jobs go to {where}, queue {self.queue!r}",
                f"Its workers must serve the queue {self.queue!r}.",
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.alias!r}/{self.queue!r}>"
