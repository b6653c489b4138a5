"""The stream's per-process hub: connected clients, one subscriber, one heartbeat.

Each open stream is a :class:`Connection`: the user's id, the id of the last
notification sent, and a small bounded queue. The hub keeps them by user and
runs two tasks on the server's event loop, started with the first stream:

* the subscriber (:func:`~offchat_notify.inbox.transports.listen`). For each
  published page it takes the connected users inside the page's id range,
  reads their rows of the Event with one query, and queues each row on its
  recipient's connections. If its connection fails it reconnects with
  backoff; once subscribed again, every connection re-reads what it missed
  from the table.
* the heartbeat: every ``STREAM_HEARTBEAT`` seconds a ping on every
  connection, which the stream writes as an SSE comment.

A queue that is full is not grown: the connection is marked behind and
re-reads from the table once it has drained. The hub's state is touched only
on its loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.contrib.auth import get_user_model

from offchat_notify.channels import live
from offchat_notify.conf import get_settings

from . import feed, transports

logger = logging.getLogger(__name__)

#: Items a connection's queue holds before it falls back to re-reading the table.
QUEUE_SIZE = 16
#: Streams of one process that read the database at once (logging in, replaying,
#: catching up): a thousand browsers reconnecting together must not open a
#: thousand database connections.
DB_SLOTS = 8
#: Seconds before reconnecting the subscriber: doubled after each failure, up to MAX_BACKOFF.
BACKOFF = 0.5
MAX_BACKOFF = 30.0

#: Queue items besides (notification id, JSON-ready item): a heartbeat, and a nudge
#: to re-read the table.
PING = "ping"
WAKE = "wake"


class Connection:
    """One open stream: whose it is, what it sent last, what waits to be sent."""

    __slots__ = ("behind", "last_id", "queue", "user_id")

    def __init__(self, user_id: Any) -> None:
        self.user_id = user_id
        self.last_id = 0
        self.behind = False  # something was dropped: re-read the table before waiting
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def offer(self, entry: Any) -> None:
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            if entry is not PING:
                self.behind = True  # it has plenty to wake up to


class Hub:
    """The connections of one event loop, and the tasks that feed them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = threading.get_ident()  # the loop's thread: get_hub() runs on it
        self.users: dict[Any, set[Connection]] = {}
        self.count = 0
        self.subscribed = False
        self.pages = 0  # page messages received
        self.failures = 0  # subscriber connections that failed
        self._tasks: list[asyncio.Task[None]] = []
        self.db_slots = asyncio.Semaphore(DB_SLOTS)
        # One thread reads the pages' rows, on one database connection it keeps.
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offchat-live")

    def add(self, user_id: Any, most: int) -> Connection | None:
        """A new connection for ``user_id``, or None if the user has ``most`` open."""
        mine = self.users.setdefault(user_id, set())
        if len(mine) >= most:
            if not mine:
                del self.users[user_id]
            return None
        connection = Connection(user_id)
        mine.add(connection)
        self.count += 1
        self._start()
        return connection

    def remove(self, connection: Connection) -> None:
        """Forget ``connection`` (idempotent); from any thread."""
        if threading.get_ident() != self.thread:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to free
                self.loop.call_soon_threadsafe(self.remove, connection)
            return
        mine = self.users.get(connection.user_id)
        if mine is None or connection not in mine:
            return
        mine.discard(connection)
        self.count -= 1
        if not mine:
            del self.users[connection.user_id]

    def stats(self) -> dict[str, Any]:
        """Figures for operators: open connections, distinct users, subscriber state."""
        return {
            "connections": self.count,
            "users": len(self.users),
            "transport": live.transport(),
            "subscribed": self.subscribed,
            "pages": self.pages,
            "subscriber_failures": self.failures,
        }

    async def stop(self) -> None:
        """Cancel the subscriber and the heartbeat (they start again with the next stream)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.loop.run_in_executor(self.reader, feed.close_connections)
        self.subscribed = False

    def _start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            self.loop.create_task(self._subscribe(), name="offchat_notify live subscriber"),
            self.loop.create_task(self._heartbeat(), name="offchat_notify live heartbeat"),
        ]

    async def _subscribe(self) -> None:
        kind = live.transport()
        if kind is None:
            return
        delay = BACKOFF
        while True:
            try:
                await transports.listen(kind, self.on_message, self._on_subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "The live stream's %s subscriber failed (%s); reconnecting in %.1f s.",
                    kind,
                    exc,
                    delay,
                )
            self.subscribed = False
            self.failures += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
            if self.subscribed:
                delay = BACKOFF

    def _on_subscribed(self) -> None:
        """Subscribed (again): pages published meanwhile were missed, so every
        connection re-reads the table."""
        self.subscribed = True
        for mine in self.users.values():
            for connection in mine:
                connection.behind = True
                connection.offer(WAKE)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(get_settings().STREAM_HEARTBEAT)
            for mine in self.users.values():
                for connection in mine:
                    connection.offer(PING)

    async def on_message(self, payload: Any) -> None:
        """One published page: queue its rows on their recipients' connections."""
        self.pages += 1
        try:
            event_id, after, last = live.decode(payload)
        except ValueError as exc:
            logger.warning("Ignored a live message that is not a page (%s): %r", exc, payload)
            return
        user_ids = self._in_range(after, last)
        if not user_ids:
            return
        try:
            ready = await self.loop.run_in_executor(
                self.reader, feed.keep_open, feed.page_items, event_id, user_ids
            )
        except Exception as exc:  # the connections catch up from the table
            logger.warning("Reading the rows of event %s for the stream failed: %s", event_id, exc)
            for user_id in user_ids:
                for connection in self.users.get(user_id, ()):
                    connection.behind = True
                    connection.offer(WAKE)
            return
        for user_id, notification_id, data in ready:
            for connection in self.users.get(user_id, ()):
                connection.offer((notification_id, data))

    def _in_range(self, after: Any, last: Any) -> list[Any]:
        """The connected users with ``after < id <= last`` (None: unbounded)."""
        to_pk = get_user_model()._meta.pk.to_python
        try:
            low = None if after is None else to_pk(after)
            high = None if last is None else to_pk(last)
            return [
                user_id
                for user_id in self.users
                if (low is None or user_id > low) and (high is None or user_id <= high)
            ]
        except Exception:  # a key that does not compare: let the query decide
            return list(self.users)


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for old in [other for other in _hubs if other.is_closed()]:
            del _hubs[old]
        hub = _hubs[loop] = Hub(loop)
    return hub
