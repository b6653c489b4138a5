from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core import checks

from offchat_notify import metrics
from offchat_notify.conf import get_settings
from offchat_notify.delivery import deliver

from .actor import load_actor
from .base import BaseBackend

logger = logging.getLogger(__name__)


class DramatiqBackend(BaseBackend):
    """Send the Event id to the ``offchat_notify.deliver_event`` actor.

    The broker is the one django-dramatiq builds from ``DRAMATIQ_BROKER``;
    workers run with ``manage.py rundramatiq``. When the broker cannot be
    reached, ``OFFCHAT_NOTIFY["ON_BROKER_ERROR"]`` decides: ``"defer"`` leaves
    the Event pending for the relay, ``"sync"`` delivers inline, ``"raise"``
    lets the error reach the caller. With ``OFFCHAT_NOTIFY["DISPATCH"] =
    "background"`` the send happens in a thread of its own
    (``offchat_notify.backends.sender``), off the committing thread.
    """

    def __init__(self) -> None:
        self.actor = load_actor()

    def dispatch(self, event_id: int) -> None:
        if get_settings().DISPATCH == "background":
            from .sender import sender

            sender.submit(self.send, event_id)
        else:
            self.send(event_id)

    def send(self, event_id: int) -> None:
        """Send the Event id to the actor now; on a broker error, apply ``ON_BROKER_ERROR``."""
        try:
            self.actor.send(event_id)
        except Exception as exc:
            self.handle_broker_error(event_id, exc)
        else:
            metrics.dispatched("dramatiq")

    def redispatch(self, event_id: int) -> None:
        self.actor.send(event_id)

    def dispatch_chunk(self, event_id: int, index: int) -> None:
        from offchat_notify.tasks import deliver_chunk

        deliver_chunk.send(event_id, index)

    def enqueue_job(self, name: str) -> None:
        from offchat_notify.tasks import run_job

        run_job.send(name)

    def handle_broker_error(self, event_id: int, exc: Exception) -> None:
        policy = get_settings().ON_BROKER_ERROR
        if policy == "raise":
            raise exc
        if policy == "sync":
            logger.warning("Broker unavailable (%s); delivering event %s inline.", exc, event_id)
            try:
                deliver(event_id)
            except Exception:
                logger.exception("Inline fallback delivery of event %s failed.", event_id)
            return
        logger.warning(
            "Broker unavailable (%s); event %s stays pending for the relay.", exc, event_id
        )

    @classmethod
    def check(cls, **kwargs: Any) -> list[checks.CheckMessage]:
        from offchat_notify.checks import check_dramatiq_setup

        return check_dramatiq_setup(settings)
