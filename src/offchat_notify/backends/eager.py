from __future__ import annotations

import dramatiq

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
        deliver_event = self.actor
        message = deliver_event.message(event_id)
        encoder = dramatiq.get_encoder()
        decoded = encoder.decode(encoder.encode(message.asdict()))
        deliver_event.fn(*decoded["args"], **decoded["kwargs"])
