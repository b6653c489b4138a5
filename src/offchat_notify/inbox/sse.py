"""One open stream as server-sent events: replay, live notifications, heartbeats.

The body of the stream's response. It starts with a ``retry:`` line; then,
for a reconnect (``Last-Event-ID``), the notifications missed since, read from
the table; then what the hub queues: each notification as

.. code-block:: text

    id: <notification id>
    event: notification
    data: <the item's JSON, plus "unread": the user's unread count>

and a ``: ping`` comment every ``STREAM_HEARTBEAT`` seconds. When the client
goes away, Django cancels the iteration (or closes the response): either way
the connection leaves the hub.
"""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder

from . import feed
from .hub import PING, WAKE, Connection, Hub

#: Milliseconds a browser waits before reconnecting (the ``retry:`` field).
RETRY_MS = 3000
#: Notification ids remembered per stream, so a row read both live and from the
#: table is sent once.
REMEMBERED = 16


def event(notification_id: int, data: dict[str, Any] | str) -> str:
    """One notification as an SSE event (JSON never holds a raw newline);
    ``data`` is the item, or its JSON already encoded."""
    if isinstance(data, str):
        body = data
    else:
        body = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
    return f"id: {notification_id}\nevent: notification\ndata: {body}\n\n"


class EventStream:
    """The async iterable a ``StreamingHttpResponse`` streams, for one connection.

    ``close()`` (which Django calls when the response ends) and the iterator's
    own ``finally`` both take the connection out of the hub.
    """

    def __init__(
        self,
        hub: Hub,
        connection: Connection,
        last_event_id: int | None,
        replay: int,
        *,
        latest: int,
    ):
        self.hub = hub
        self.connection = connection
        self.last_event_id = last_event_id
        self.replay = replay
        self.latest = latest  # the user's newest notification id when the stream opened

    def __aiter__(self) -> AsyncIterator[str]:
        return self._events()

    def close(self) -> None:
        self.hub.remove(self.connection)

    async def _events(self) -> AsyncIterator[str]:
        connection = self.connection
        sent: collections.deque[int] = collections.deque(maxlen=REMEMBERED)
        try:
            yield f"retry: {RETRY_MS}\n\n"
            latest = self.latest
            connection.last_id = latest
            if self.last_event_id is not None and self.last_event_id < latest:
                # A reconnect: replay what was missed. An id past the user's newest
                # (another database, a forged one) must not hold back what comes next.
                connection.last_id = self.last_event_id
                connection.behind = True
            floor = connection.last_id  # the client has everything up to here
            while True:
                if connection.behind and connection.queue.empty():
                    connection.behind = False
                    missed = await read(
                        self.hub, feed.missed, connection.user_id, connection.last_id, self.replay
                    )
                    for _user_id, notification_id, data in missed:
                        if notification_id not in sent:
                            sent.append(notification_id)
                            connection.last_id = max(connection.last_id, notification_id)
                            yield event(notification_id, data)
                entry = await connection.queue.get()
                if entry is PING:
                    yield ": ping\n\n"
                elif entry is not WAKE:
                    notification_id, data = entry
                    if notification_id > floor and notification_id not in sent:
                        sent.append(notification_id)
                        connection.last_id = max(connection.last_id, notification_id)
                        yield event(notification_id, data)
        finally:  # a disconnect cancels the iteration: free the connection
            self.hub.remove(connection)


async def read(hub: Hub, func: Any, *args: Any) -> Any:
    """``func(*args)`` on the request's thread, then close its database connection
    (an open stream holds none while it waits); at most ``DB_SLOTS`` at once."""
    async with hub.db_slots:
        return await sync_to_async(feed.release_connections)(func, *args)
