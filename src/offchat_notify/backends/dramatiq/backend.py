"""The dramatiq backend: jobs go to Dramatiq actors, run by ``manage.py rundramatiq``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import dramatiq

from offchat_notify import metrics
from offchat_notify.backends.base import DELIVER, BaseBackend, BrokerStats, Finding
from offchat_notify.backends.jobs import run
from offchat_notify.exceptions import NotifyConfigurationError

from . import checks, diagnosis
from .options import DEFAULTS, merged, problems
from .sender import sender
from .stats import collect

logger = logging.getLogger(__name__)


class DramatiqBackend(BaseBackend):
    """Send each job to its actor (``offchat_notify.deliver_event`` and friends).

    The broker is the one django-dramatiq builds from ``DRAMATIQ_BROKER``;
    workers run with ``manage.py rundramatiq``. Options:

    * ``QUEUE``: the actors' queue (default ``"offchat_notify"``), fixed when
      the actors are declared (``rundramatiq`` imports them at start);
    * ``DISPATCH``: ``"background"`` (default) sends in a thread of its own
      (:mod:`.sender`), so the request never waits on the broker;
      ``"inline"`` sends in the committing thread (the default under
      ``ON_BROKER_ERROR = "raise"``);
    * ``ON_BROKER_ERROR``, when the broker cannot take a new Event:
      ``"defer"`` (default) leaves it pending for the relay, ``"sync"``
      delivers it inline, ``"raise"`` lets the error reach the caller.
    """

    runs_in_worker = True
    reports_queue = True
    default_options = DEFAULTS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options = merged(dict(options or {}))
        self.actors = load_actors()

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[str]:
        return super().option_problems(options) + problems(merged(options))

    def enqueue(self, job: str, *args: Any) -> None:
        self.actors[job].send(*args)
        if job == DELIVER:
            metrics.dispatched("dramatiq")

    def after_commit(self, event_id: int) -> None:
        if self.options["DISPATCH"] == "background":
            sender.submit(self.send, event_id)
        else:
            self.send(event_id)

    def send(self, event_id: int) -> None:
        """Send the Event id to its actor now; on a broker error, apply ``ON_BROKER_ERROR``."""
        try:
            self.enqueue(DELIVER, event_id)
        except Exception as exc:
            self.handle_broker_error(event_id, exc)

    def handle_broker_error(self, event_id: int, exc: Exception) -> None:
        policy = self.options["ON_BROKER_ERROR"]
        if policy == "raise":
            raise exc
        if policy == "sync":
            logger.warning("Broker unavailable (%s); delivering event %s inline.", exc, event_id)
            try:
                run(DELIVER, [event_id], enqueue=self.enqueue)
            except Exception:
                logger.exception("Inline fallback delivery of event %s failed.", event_id)
            return
        logger.warning(
            "Broker unavailable (%s); event %s stays pending for the relay.", exc, event_id
        )

    @property
    def queue_name(self) -> str:
        return str(self.options["QUEUE"])

    @classmethod
    def check(cls, options: Mapping[str, Any], **kwargs: Any) -> list[Any]:
        return checks.check_setup()

    @classmethod
    def check_deploy(cls, options: Mapping[str, Any], **kwargs: Any) -> list[Any]:
        return checks.check_deploy()

    def status(self, *, detail: bool = True) -> BrokerStats | None:
        return collect(dramatiq.get_broker(), [self.queue_name], detail=detail)

    def diagnose(self) -> Iterator[Finding]:
        return diagnosis.diagnose(self.status())


def load_actors() -> dict[str, Any]:
    """The actors by job name, turning dramatiq's declaration errors into advice.

    Importing :mod:`.actors` declares the actors on the broker django-dramatiq
    built, so it is imported here, when the backend is built, and never at
    import time: that broker must exist first, and declaring fails if it lacks
    the middleware the actors' options need.
    """
    try:
        from .actors import ACTORS
    except ValueError as e:
        raise NotifyConfigurationError(
            f"The delivery actor cannot be declared on the configured broker: {e}. "
            "Run manage.py check for the missing DRAMATIQ_BROKER['MIDDLEWARE'] entries."
        ) from e
    return ACTORS
