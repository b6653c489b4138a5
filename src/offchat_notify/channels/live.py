"""The live stream's publish side: one small message per written page of an Event.

After each page of Notification rows commits, :func:`publish_page` sends
``{"e": <event id>, "a": <after>, "b": <last>}``: the Event, and the range
``a < recipient id <= b`` of the page (``null``: unbounded). It is sent once
per page, never once per recipient. Each web process serving the stream
receives it and finds, with one query, which of its connected users the page
wrote to (:mod:`offchat_notify.inbox.hub`).

The transport is ``OFFCHAT_NOTIFY["LIVE"]``:

* ``"redis"``: Redis ``PUBLISH`` on ``LIVE_CHANNEL``, through
  ``LIVE_REDIS_URL`` or else the dramatiq broker's own Redis client;
* ``"postgres"``: ``pg_notify`` on the database the rows are written to;
* ``"local"``: to the listeners of this process (the ``sync`` and ``eager``
  backends under a single-process ASGI server);
* ``"auto"`` (default): Redis if ``LIVE_REDIS_URL`` is set or the broker is
  Redis, else PostgreSQL if the database is, else local;
* ``None``: nothing is published.

A publish that fails is logged and dropped: the delivery goes on. The stream's
``Last-Event-ID`` replay and the client's polling read the table, which is
the source of truth.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import connections, router, transaction

from offchat_notify.conf import get_settings, settings_cache
from offchat_notify.models import Notification

logger = logging.getLogger(__name__)

REDIS = "redis"
POSTGRES = "postgres"
LOCAL = "local"

#: Seconds the publisher's own Redis client (``LIVE_REDIS_URL``) waits at most.
REDIS_TIMEOUT = 1.0

#: What a page message decodes to: (event id, after, last); after/last None: unbounded.
Page = tuple[int, Any, Any]

_listeners: list[Callable[[str], None]] = []
_listeners_lock = threading.Lock()


def broker_redis_client() -> Any | None:
    """The dramatiq broker's Redis client, or None when the broker is not Redis.

    Duck-typed (a broker with a ``client`` that can ``publish``), so this layer
    needs no backend. Only asked when django_dramatiq is installed: it sets the
    broker from ``DRAMATIQ_BROKER`` at startup, where ``dramatiq.get_broker()``
    would otherwise create a default RabbitMQ broker.
    """
    if not apps.is_installed("django_dramatiq"):
        return None
    try:
        import dramatiq
    except ImportError:
        return None
    client = getattr(dramatiq.get_broker(), "client", None)
    return client if callable(getattr(client, "publish", None)) else None


@settings_cache
def transport() -> str | None:
    """The live transport in use: ``"redis"``, ``"postgres"``, ``"local"`` or None (off)."""
    conf = get_settings()
    if conf.LIVE != "auto":
        return conf.LIVE
    if conf.LIVE_REDIS_URL or broker_redis_client() is not None:
        return REDIS
    if connections[router.db_for_write(Notification)].vendor == "postgresql":
        return POSTGRES
    return LOCAL


def channel() -> str:
    return get_settings().LIVE_CHANNEL


@settings_cache
def _own_redis_client() -> Any:
    import redis

    return redis.Redis.from_url(
        str(get_settings().LIVE_REDIS_URL),
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
    )


def redis_client() -> Any | None:
    """The client the worker publishes with: ``LIVE_REDIS_URL``'s, else the broker's."""
    if get_settings().LIVE_REDIS_URL:
        return _own_redis_client()
    return broker_redis_client()


def encode(event_id: int, after: Any, last: Any) -> str:
    """The page message: compact JSON; primary keys that are not numbers go as strings."""
    return json.dumps({"e": event_id, "a": after, "b": last}, separators=(",", ":"), default=str)


def decode(payload: str | bytes) -> Page:
    """``(event id, after, last)`` from a page message; ValueError if it is not one."""
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise ValueError("a page message is a JSON object")
    event_id = message.get("e")
    if isinstance(event_id, bool) or not isinstance(event_id, int):
        raise ValueError(f"a page message needs an integer event id, not {event_id!r}")
    return event_id, message.get("a"), message.get("b")


def publish_page(event_id: int, after: Any, last: Any) -> None:
    """Announce, once the current transaction commits, that ``event_id``'s rows
    for recipients ``after < id <= last`` are written (at once in autocommit)."""
    kind = transport()
    if kind is None:
        return
    using = router.db_for_write(Notification)
    send = functools.partial(_send, kind, encode(event_id, after, last), using)
    transaction.on_commit(send, using=using)


def _send(kind: str, payload: str, using: str) -> None:
    try:
        if kind == REDIS:
            client = redis_client()
            if client is None:
                raise RuntimeError("no Redis: set OFFCHAT_NOTIFY['LIVE_REDIS_URL']")
            client.publish(channel(), payload)
        elif kind == POSTGRES:
            with connections[using].cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [channel(), payload])
        else:
            for listener in list(_listeners):
                listener(payload)
    except Exception as exc:  # the stream's replay and the client's polling cover it
        logger.warning("Live publish of %s over %s failed: %s", payload, kind, exc)


def add_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(payload)`` for every page published in this process (``"local"``).

    It runs in the publishing thread and must return at once.
    """
    with _listeners_lock:
        _listeners.append(listener)


def remove_listener(listener: Callable[[str], None]) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)
