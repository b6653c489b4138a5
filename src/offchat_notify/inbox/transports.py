"""The web process's one subscriber: Redis pub/sub, PostgreSQL LISTEN, or in-process.

:func:`listen` subscribes to ``LIVE_CHANNEL`` over the transport in use
(:func:`offchat_notify.channels.live.transport`), calls ``on_subscribed()``
once the subscription stands, then ``await on_message(payload)`` for each
published page, until the connection fails: then it raises, and the hub
reconnects with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import connections, router

from offchat_notify.channels import live
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import NotifyConfigurationError
from offchat_notify.models import Notification

OnMessage = Callable[[Any], Awaitable[None]]
OnSubscribed = Callable[[], None]

#: Seconds between the subscriber's checks that its connection is alive.
HEALTH_CHECK = 30

#: What the subscriber takes from the broker client's connection, when it shares it.
_REDIS_KEYS = ("host", "port", "db", "username", "password", "path", "socket_connect_timeout")


async def listen(kind: str, on_message: OnMessage, on_subscribed: OnSubscribed) -> None:
    """Subscribe over ``kind`` and hand every page message on, until the connection fails."""
    if kind == live.REDIS:
        await _listen_redis(on_message, on_subscribed)
    elif kind == live.POSTGRES:
        await _listen_postgres(on_message, on_subscribed)
    else:
        await _listen_local(on_message, on_subscribed)


def async_redis() -> Any:
    """A ``redis.asyncio`` client for the subscriber: ``LIVE_REDIS_URL``, or the
    dramatiq broker's connection details. No read timeout: it waits for messages."""
    from redis import asyncio as aioredis
    from redis.asyncio import connection as aconnection

    url = get_settings().LIVE_REDIS_URL
    if url:
        pool = aioredis.ConnectionPool.from_url(url)
    else:
        client = live.broker_redis_client()
        sync_pool = getattr(client, "connection_pool", None)
        kind = getattr(getattr(sync_pool, "connection_class", None), "__name__", "")
        connection_class = getattr(aconnection, kind, None) if kind else None
        if sync_pool is None or connection_class is None or hasattr(sync_pool, "service_name"):
            raise NotifyConfigurationError(
                "The live stream cannot reuse the dramatiq broker's Redis connection; set "
                "OFFCHAT_NOTIFY['LIVE_REDIS_URL']."
            )
        given = sync_pool.connection_kwargs
        kwargs = {k: given[k] for k in _REDIS_KEYS if k in given}
        kwargs.update({k: v for k, v in given.items() if k.startswith("ssl_")})
        pool = aioredis.ConnectionPool(connection_class=connection_class, **kwargs)
    pool.connection_kwargs.update(socket_timeout=None, health_check_interval=HEALTH_CHECK)
    return aioredis.Redis(connection_pool=pool)


async def _listen_redis(on_message: OnMessage, on_subscribed: OnSubscribed) -> None:
    client = async_redis()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(live.channel())
        on_subscribed()
        async for message in pubsub.listen():
            if message.get("type") == "message":
                await on_message(message["data"])
    finally:
        await pubsub.aclose()
        await client.aclose()


def postgres_params() -> dict[str, Any]:
    """psycopg connection parameters of the database the rows are written to."""
    alias = router.db_for_write(Notification)
    params = dict(connections[alias].get_connection_params())
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return params


async def _listen_postgres(on_message: OnMessage, on_subscribed: OnSubscribed) -> None:
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:
        raise NotifyConfigurationError(
            "The live stream over PostgreSQL needs psycopg 3: pip install psycopg."
        ) from exc
    params = postgres_params()
    conn = await psycopg.AsyncConnection.connect(autocommit=True, **params)
    try:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(live.channel())))
        on_subscribed()
        while True:
            async for notify in conn.notifies(timeout=HEALTH_CHECK):
                await on_message(notify.payload)
            await conn.execute("SELECT 1")  # quiet for a while: is the connection alive?
    finally:
        await conn.close()


async def _listen_local(on_message: OnMessage, on_subscribed: OnSubscribed) -> None:
    """Pages published by this process (the ``sync`` and ``eager`` backends)."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[str] = asyncio.Queue()

    def deliver(payload: str) -> None:  # in the publishing thread
        loop.call_soon_threadsafe(inbox.put_nowait, payload)

    live.add_listener(deliver)
    try:
        on_subscribed()
        while True:
            await on_message(await inbox.get())
    finally:
        live.remove_listener(deliver)
