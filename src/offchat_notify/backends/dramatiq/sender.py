"""Broker sends off the request thread: ``OFFCHAT_NOTIFY["OPTIONS"]["DISPATCH"] = "background"``.

With the ``dramatiq`` backend, ``notify()``'s on-commit callback normally
sends the Event id to the broker itself, so the request waits for one broker
round trip (and, if the broker hangs, for its socket timeout). In the
background mode the callback only puts the id on an in-process queue; one
daemon thread per process sends it. The request then pays for its own
database writes only.

What it costs: the send is no longer done when the response leaves. An id
still queued when the process dies is not lost, only late: its Event stays
``pending`` and the relay sends it after ``RELAY_AFTER``. At a normal exit,
:func:`flush` runs (atexit) and waits up to :data:`EXIT_TIMEOUT` for the queue
to drain. Broker errors are handled in the thread, by the ``ON_BROKER_ERROR`` option
(``"defer"`` or ``"sync"``; ``"raise"`` has no caller to raise to and is
refused with this mode).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger(__name__)

#: Ids waiting beyond this are not queued: their Events stay pending for the relay.
MAX_QUEUED = 10_000
#: How long a normal interpreter exit waits for queued sends.
EXIT_TIMEOUT = 5.0

Send = Callable[[int], None]


class BackgroundSender:
    """One queue and one daemon thread per process (re-made after a fork)."""

    def __init__(self, maxsize: int = MAX_QUEUED) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Send, int]] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def submit(self, send: Send, event_id: int) -> None:
        """Have ``send(event_id)`` called by the sender thread, soon."""
        self._ensure_thread()
        try:
            self._queue.put_nowait((send, event_id))
        except queue.Full:
            logger.warning(
                "%d broker sends are waiting; event %s stays pending for the relay.",
                self.maxsize,
                event_id,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued id is sent (or ``timeout`` seconds pass); return
        whether the queue drained."""
        if self._pid != os.getpid():
            return True  # the parent's queue; nothing of this process's is in it
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                done.wait(remaining)
        return True

    def pending(self) -> int:
        """How many ids are queued or being sent."""
        return self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: the parent's queue and thread are not this process's.
                self._pid = os.getpid()
                self._queue = queue.Queue(self.maxsize)
                self._thread = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="offchat-notify-sender", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            send, event_id = self._queue.get()
            try:
                send(event_id)
            except Exception:
                logger.exception(
                    "Sending event %s to the broker failed; it stays pending for the relay.",
                    event_id,
                )
            finally:
                # An inline delivery ("sync" policy) opened connections in this thread.
                for connection in connections.all(initialized_only=True):
                    connection.close()
                self._queue.task_done()


#: The process's sender.
sender = BackgroundSender()


def flush(timeout: float | None = None) -> bool:
    """Wait for the background sends of this process; return whether all were sent.

    For tests that use the ``DISPATCH = "background"`` option with a stub broker: call it
    after the commit, before looking at the broker's queue.
    """
    return sender.flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    waiting = sender.pending()
    if waiting and not sender.flush(EXIT_TIMEOUT):
        logger.warning(
            "Exiting with %d broker send(s) not done; the relay will send their Events.",
            sender.pending(),
        )
