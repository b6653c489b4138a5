from __future__ import annotations

from typing import Any

import dramatiq

from offchat_notify import metrics

from .actor import load_actor
from .base import BaseBackend


class EagerBackend(BaseBackend):
    """Run the Dramatiq actor's own code in-process, like Celery's always-eager mode.

    The actor's arguments make a round trip through dramatiq's encoder first,
    so whatever would break on a real broker breaks here too. Errors propagate
    to the caller: this backend is meant for tests.
    """

    def __init__(self) -> None:
        self.actor = load_actor()

    def dispatch(self, event_id: int) -> None:
        _run_eagerly(self.actor, event_id)
        metrics.dispatched("eager")

    def dispatch_chunk(self, event_id: int, index: int) -> None:
        from offchat_notify.tasks import deliver_chunk

        _run_eagerly(deliver_chunk, event_id, index)


def _run_eagerly(actor: Any, *args: Any) -> None:
    """Call the actor's function with its arguments as a broker would deliver them."""
    encoder = dramatiq.get_encoder()
    decoded = encoder.decode(encoder.encode(actor.message(*args).asdict()))
    actor.fn(*decoded["args"], **decoded["kwargs"])
