from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq

from offchat_notify import metrics

from .base import DELIVER, BaseBackend
from .dramatiq.backend import load_actors


class EagerBackend(BaseBackend):
    """Run the Dramatiq actors' own code in-process, like Celery's always-eager mode.

    The actor's arguments make a round trip through dramatiq's encoder first,
    so whatever would break on a real broker breaks here too. Errors propagate
    to the caller: this backend is meant for tests.
    """

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.actors = load_actors()

    def enqueue(self, job: str, *args: Any) -> None:
        actor = self.actors[job]
        encoder = dramatiq.get_encoder()
        decoded = encoder.decode(encoder.encode(actor.message(*args).asdict()))
        actor.fn(*decoded["args"], **decoded["kwargs"])
        if job == DELIVER:
            metrics.dispatched("eager")

    def after_commit(self, event_id: int) -> None:
        self.enqueue(DELIVER, event_id)  # errors reach the test that caused them
