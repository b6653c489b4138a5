"""What a channel job does between two messages: pace them, and keep its batch.

A channel's sender calls the job's :class:`Keeper` before each message it
sends. The keeper

- spaces the messages to a rate (``EMAIL_RATE_LIMIT``): one message at most
  every ``1 / rate`` seconds, across the batches of the job, so a provider
  never sees more than the rate in any second;
- about once a second (:func:`heartbeat`), marks ``sent`` what the batch sent
  since the last time and renews the lease of the rest. A batch that takes
  long (a slow provider, a low rate) keeps its rows for as long as its job is
  alive; a job that died loses them ``STUCK_AFTER`` seconds later; and a
  worker killed mid-batch can send again only what it sent in its last
  second, not the whole batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from time import monotonic
from typing import Protocol

from offchat_notify.conf import get_settings

from . import sends

#: At most one heartbeat per this many seconds (and five per ``STUCK_AFTER``,
#: whose least value is one second).
HEARTBEAT = 1.0


class Progress(Protocol):
    """What a sender has done with its batch so far (an ``Outcome``)."""

    sent: dict[int, str]
    failed: dict[int, str]


def heartbeat() -> float:
    """Seconds between two heartbeats of a channel job."""
    return min(HEARTBEAT, get_settings().STUCK_AFTER / 5)


def lease() -> float:
    """Seconds a claimed batch stays its job's without a heartbeat: after that
    the job is taken for dead, and its rows are sent again (``STUCK_AFTER``)."""
    return float(get_settings().STUCK_AFTER)


class Keeper:
    """Paces the messages of one channel job and keeps the lease of its batch.

    ``start(batch_ids)`` when a batch is claimed, call it before each message
    with the sender's progress, ``finish(progress)`` once the sender returns.
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.interval = 1 / rate if rate else 0.0
        self.beat = heartbeat()
        self.sleep, self.clock = sleep, clock
        self.next_at = clock()
        self.ids: list[int] = []
        self.marked: set[int] = set()
        self.last_beat = self.next_at

    def start(self, batch_ids: Iterable[int]) -> None:
        """A new batch: these rows are the job's now (claimed this instant)."""
        self.ids = list(batch_ids)
        self.marked = set()
        self.last_beat = self.clock()

    def __call__(self, progress: Progress) -> None:
        """Before a message: wait its turn at the rate, beating while it waits."""
        if self.interval:
            while (wait := self.next_at - self.clock()) > 0:
                self.sleep(min(wait, self.beat))
                self._beat_if_due(progress)
            self.next_at = max(self.next_at, self.clock()) + self.interval
        self._beat_if_due(progress)

    def finish(self, progress: Progress) -> None:
        """The batch is done: mark what was sent and not yet marked, and what failed."""
        self._mark(progress)
        sends.mark_failed(progress.failed)

    def _beat_if_due(self, progress: Progress) -> None:
        now = self.clock()
        if now - self.last_beat < self.beat:
            return
        self._mark(progress)
        done = progress.sent.keys() | progress.failed.keys()
        sends.renew([pk for pk in self.ids if pk not in done])
        self.last_beat = now

    def _mark(self, progress: Progress) -> None:
        new = {pk: mid for pk, mid in progress.sent.items() if pk not in self.marked}
        sends.mark_sent(new)
        self.marked.update(new)
