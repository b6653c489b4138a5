"""The backend interface, on the model of ``django.tasks``.

A backend is built with its options (``OFFCHAT_NOTIFY["OPTIONS"]``), enqueues
*named jobs* with their arguments, declares what it can do with capability
flags, and owns its system checks, its status and its diagnosis. Nothing
outside a backend compares backend names.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from django.core.checks import CheckMessage

from offchat_notify.exceptions import NotifyConfigurationError

logger = logging.getLogger(__name__)

#: The jobs a backend enqueues, and their arguments.
DELIVER = "deliver"  # (event_id: int): deliver an Event (or plan its chunks)
DELIVER_CHUNK = "deliver_chunk"  # (event_id: int, index: int): one chunk of a large Event
RUN_JOB = "run_job"  # (name: str): one periodic job of the scheduler
DELIVER_CHANNEL = "deliver_channel"  # (event_id: int, channel: str): an Event's emails
JOB_NAMES = (DELIVER, DELIVER_CHUNK, RUN_JOB, DELIVER_CHANNEL)

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclasses.dataclass
class Finding:
    """One line of ``manage.py notify_doctor``: what was found, and how to fix it."""

    level: str  # OK, WARNING or ERROR
    title: str
    fix: str = ""


@dataclasses.dataclass
class QueueStats:
    """One queue, as the backend's broker reports it."""

    name: str
    ready: int
    delayed: int
    dead: int
    in_flight: int | None = None  # fetched by a worker, not yet acknowledged
    consumers: int | None = None  # workers attached, where the broker knows


@dataclasses.dataclass
class BrokerStats:
    """What a backend's queue holds, for ``notify_status``, the admin and health."""

    kind: str
    reachable: bool
    error: str = ""
    queues: list[QueueStats] = dataclasses.field(default_factory=list)
    #: Processes with a fresh broker heartbeat, where the broker has them (an
    #: upper bound on the workers: senders count too).
    connected: int | None = None


class BaseBackend(abc.ABC):
    """Decides where and when the library's jobs run.

    Subclasses implement :meth:`enqueue`. ``notify()`` writes the Event, and
    once the surrounding transaction has committed calls :meth:`after_commit`
    with its id; the relay, the chunk planner and the scheduler call
    :meth:`enqueue` directly. A job is a name from :data:`JOB_NAMES` and
    JSON-safe arguments (ids and names only: the database holds the payload);
    :func:`offchat_notify.backends.jobs.run` runs one wherever the backend
    decides.

    Subclasses may also set the capability flags, declare their options in
    :attr:`default_options`, and override :meth:`check`, :meth:`status` and
    :meth:`diagnose`. The backend is built on the first ``notify()``, before
    anything is written, so a configuration error raised in ``__init__``
    reaches the caller with nothing half-done.
    """

    #: The jobs run in worker processes, not in the process that enqueues them.
    runs_in_worker: ClassVar[bool] = False
    #: :meth:`status` reports the backend's queue (ready, delayed, dead jobs).
    reports_queue: ClassVar[bool] = False
    #: The options this backend accepts, with their defaults. Unknown options
    #: are configuration errors, so a typo never falls back to a default.
    default_options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        problems = self.option_problems(dict(options or {}))
        if problems:
            raise NotifyConfigurationError(problems[0])
        self.options: dict[str, Any] = {**self.default_options, **(options or {})}

    @abc.abstractmethod
    def enqueue(self, job: str, *args: Any) -> None:
        """Have ``job`` run with ``args``. Raise if the backend cannot take it now,
        so the caller (the relay) knows to try again later."""

    def after_commit(self, event_id: int) -> None:
        """Hand over an Event that ``notify()`` has just committed.

        Never raises: an Event that could not be handed over stays ``pending``
        and the relay sends it later. Backends override this to apply their own
        policy (the dramatiq backend's ``DISPATCH`` and ``ON_BROKER_ERROR``).
        """
        try:
            self.enqueue(DELIVER, event_id)
        except Exception as exc:
            logger.warning(
                "%s could not take event %s (%s); it stays pending for the relay.",
                type(self).__name__,
                event_id,
                exc,
            )

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[str]:
        """Everything wrong with ``options``, one sentence each (empty: they are fine)."""
        unknown = sorted(set(options) - set(cls.default_options), key=str)
        known = ", ".join(cls.default_options) or "none"
        return [
            f"OFFCHAT_NOTIFY['OPTIONS']: {cls.__name__} takes no option {key!r} "
            f"(its options: {known})."
            for key in unknown
        ]

    @classmethod
    def check(cls, options: Mapping[str, Any], **kwargs: Any) -> list[CheckMessage]:
        """System check messages about this backend's setup, before it is built."""
        return []

    @classmethod
    def check_deploy(cls, options: Mapping[str, Any], **kwargs: Any) -> list[CheckMessage]:
        """Like :meth:`check`, for ``manage.py check --deploy`` only."""
        return []

    def status(self, *, detail: bool = True) -> BrokerStats | None:
        """The backend's queue, if it :attr:`reports_queue`; never raises.

        ``detail=False`` skips what costs more than a few commands, for
        frequent probes such as the health endpoint.
        """
        return None

    def diagnose(self) -> Iterator[Finding]:
        """What ``manage.py notify_doctor`` should say about this backend at run time."""
        return iter(())

    @property
    def name(self) -> str:
        """How status pages show this backend."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
