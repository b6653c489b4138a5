"""``GET notifications/stream/``: the live stream, server-sent events under ASGI.

An async view: each open stream costs a small queue in the process's hub
(:mod:`.hub`) and no task or database connection of its own while it waits.
Under WSGI it answers 501: the browser client then polls ``unread/``.
"""

from __future__ import annotations

import re

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils.cache import add_never_cache_headers

from offchat_notify.conf import get_settings

from . import feed
from .http import error
from .hub import get_hub
from .sse import EventStream, read

#: The largest notification id (a BigAutoField) a Last-Event-ID may name.
MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def last_event_id(request: HttpRequest) -> int | None:
    """The ``Last-Event-ID`` header, else the ``last_event_id`` query parameter
    (for clients that cannot set headers); None if neither is given.

    Raises:
        ValueError: it is not a notification id (a whole number from 0).
    """
    value = request.headers.get("Last-Event-ID")
    if value is None or not value.strip():
        value = request.GET.get("last_event_id")
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _DIGITS.fullmatch(value) or int(value) > MAX_ID:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValueError(
            f"Last-Event-ID must be the id of a notification (a whole number), not {shown!r}"
        )
    return int(value)


async def stream(request: HttpRequest) -> HttpResponseBase:
    """The logged-in user's notifications as they are delivered (``text/event-stream``).

    401 for anonymous users, 400 for a malformed ``Last-Event-ID``, 429 over
    ``STREAM_MAX_PER_USER`` open streams, 501 under WSGI, 503 with the stream
    turned off (``LIVE`` None). ``?status=1`` answers, to staff only, this
    process's figures (open connections, users, subscriber state).
    """
    response = await _answer(request)
    add_never_cache_headers(response)
    return response


async def _answer(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return error(f"method {request.method} is not allowed here; use GET", 405, Allow="GET")
    if not isinstance(request, ASGIRequest):
        return error(
            "the live stream needs an ASGI server (uvicorn, daphne, granian); this one runs "
            "WSGI. Poll unread/ instead",
            501,
        )
    hub = get_hub()
    async with hub.db_slots:  # a reconnect storm opens DB_SLOTS connections, not thousands
        user = await request.auser()
        await sync_to_async(feed.close_connections)()  # a stream holds none while it waits
    if not user.is_authenticated:
        return error("authentication required", 401)
    conf = get_settings()
    if conf.LIVE is None:
        return error(
            "the live stream is turned off (OFFCHAT_NOTIFY['LIVE'] is None); poll unread/", 503
        )
    if request.GET.get("status"):
        if not user.is_staff:
            return error("the stream's status is for staff users only", 403)
        return JsonResponse(hub.stats())
    try:
        since = last_event_id(request)
    except ValueError as exc:
        return error(str(exc), 400)
    connection = hub.add(user.pk, conf.STREAM_MAX_PER_USER)
    if connection is None:
        return error(
            f"too many open streams for this user (at most {conf.STREAM_MAX_PER_USER}); "
            "close one, or poll unread/",
            429,
            Retry_After="30",
        )
    try:
        # Where "new" starts, read before the response (and its headers) goes
        # out: whatever commits after a client sees the stream open is sent.
        latest = await read(hub, feed.latest_id, user.pk)
    except BaseException:
        hub.remove(connection)
        raise
    events = EventStream(hub, connection, since, conf.STREAM_REPLAY, latest=latest)
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
