"""The live stream end to end: a real uvicorn process, real SSE connections, and
deliveries published over Redis or PostgreSQL (from this process, or from a real
``rundramatiq`` worker)."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from offchat_notify import Audience, notify
from offchat_notify.models import Event, Notification
from tests.helpers import wait_for

from .sse import AsgiServer, session_cookie

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def channel() -> str:
    return f"offchat_test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start_server(postgres: None, tmp_path: Path) -> Iterator[Callable[..., AsgiServer]]:
    """Start uvicorn on the test database with ``OFFCHAT_NOTIFY`` overrides."""
    servers: list[AsgiServer] = []

    def start(live: dict[str, Any], **env: str) -> AsgiServer:
        server = AsgiServer(
            connection.settings_dict["NAME"],
            tmp_path / f"uvicorn-{len(servers)}.log",
            env={"TEST_OFFCHAT_NOTIFY": json.dumps(live), **env},
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def people(make_users: Callable[..., list[Any]]) -> dict[str, Any]:
    """Three admins, one other user, and a staff user who reads the stream's status."""
    admins = make_users(3, group="admin")
    (other,) = make_users(1)
    (staff,) = make_users(1, is_staff=True)
    return {"admins": admins, "other": other, "staff": staff, "staff_cookie": session_cookie(staff)}


def wait_subscribed(server: AsgiServer, staff_cookie: str) -> None:
    wait_for(
        lambda: server.status(staff_cookie)["subscribed"],
        timeout=30,
        what="the stream's subscriber to subscribe",
        on_fail=server.output,
    )


def mine(event: Event, user: Any) -> int:
    return Notification.objects.get(event=event, recipient=user).pk


class ChannelCounter:
    """Counts the page messages published on a Redis channel (a subscriber of the test's own)."""

    def __init__(self, redis_url: str, channel: str) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.messages: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # closed by the test
            for message in self.pubsub.listen():
                if message["type"] == "message":
                    self.messages.append(json.loads(message["data"]))

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.mark.redis
def test_redis_stream_sends_each_event_to_its_recipients_only(
    start_server, people, redis_url, channel, settings
):
    # Given a server and this process on Redis, pages of 2 users, and open streams
    live = {"LIVE": "redis", "LIVE_REDIS_URL": redis_url, "LIVE_CHANNEL": channel}
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "PAGE_SIZE": 2, **live}
    server = start_server(live)
    counter = ChannelCounter(redis_url, channel)
    a1, a2, a3 = people["admins"]
    other = people["other"]
    first, second = server.stream(session_cookie(a1)), server.stream(session_cookie(a1))
    of_a3 = server.stream(session_cookie(a3))
    of_other = server.stream(session_cookie(other))
    assert first.status == 200
    assert first.headers["Content-Type"].startswith("text/event-stream")
    assert "no-cache" in first.headers["Cache-Control"]
    assert first.headers["X-Accel-Buffering"] == "no"
    wait_subscribed(server, people["staff_cookie"])
    try:
        # When the admins are notified (3 recipients: two pages)
        event = notify(Audience.role("admin"), "message.sent", title="Hello", body="b")
        # Then each admin's streams get their own row, with the unread count
        for stream, user in ((first, a1), (second, a1), (of_a3, a3)):
            (got,) = stream.wait_events(1)
            assert got["event"] == "notification"
            assert int(got["id"]) == mine(event, user)
            assert got["json"]["title"] == "Hello"
            assert got["json"]["verb"] == "message.sent"
            assert got["json"]["unread"] == 1
        # And the other user, notified next, gets only their own
        later = notify(Audience.users([other.pk]), "direct", title="For you")
        (got,) = of_other.wait_events(1)
        assert int(got["id"]) == mine(later, other)
        assert [e["json"]["title"] for e in of_other.received()] == ["For you"]
        # And no stream got a row of someone else
        for stream, user in ((first, a1), (second, a1), (of_a3, a3), (of_other, other)):
            owned = set(Notification.objects.filter(recipient=user).values_list("pk", flat=True))
            assert set(stream.ids()) <= owned
        assert len(first.received()) == 1
        # And the worker side published once per page, not per recipient
        wait_for(lambda: len(counter.messages) >= 3, timeout=10, what="3 page messages")
        pages = [m for m in counter.messages if m["e"] == event.pk]
        assert len(pages) == 2
        assert [m for m in counter.messages if m["e"] == later.pk] == [
            {"e": later.pk, "a": None, "b": other.pk}
        ]
    finally:
        counter.close()
        for stream in (first, second, of_a3, of_other):
            stream.close()


def test_postgres_stream_replays_missed_events_and_frees_closed_connections(
    start_server, people, channel, settings
):
    # Given a server and this process on PostgreSQL LISTEN/NOTIFY
    live = {"LIVE": "postgres", "LIVE_CHANNEL": channel, "STREAM_HEARTBEAT": 1}
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", **live}
    server = start_server(live)
    a1, a2, _a3 = people["admins"]
    staff_cookie = people["staff_cookie"]
    cookie = session_cookie(a1)
    stream = server.stream(cookie)
    wait_subscribed(server, staff_cookie)
    assert server.status(staff_cookie)["connections"] == 1
    # When an admin is notified while connected
    event = notify(Audience.role("admin"), "one", title="live")
    (got,) = stream.wait_events(1)
    assert int(got["id"]) == mine(event, a1)
    # and heartbeats keep the stream open
    wait_for(lambda: "ping" in stream.comments, timeout=30, what="a heartbeat")
    assert stream.fields[0] == "retry"
    # Then a closed stream leaves the hub
    stream.close()
    wait_for(
        lambda: server.status(staff_cookie)["connections"] == 0,
        timeout=30,
        what="the closed stream to leave the hub",
        on_fail=server.output,
    )
    # When two more Events go out while the admin is away, one of them to a2 only
    missed = [notify(Audience.role("admin"), f"missed-{i}", title=f"m{i}") for i in range(2)]
    notify(Audience.users([a2.pk]), "not-yours", title="a2 only")
    # Then reconnecting with Last-Event-ID replays exactly what a1 missed, oldest first
    again = server.stream(cookie, Last_Event_ID=got["id"])
    replayed = again.wait_events(2)
    assert [int(e["id"]) for e in replayed] == [mine(e, a1) for e in missed]
    assert [e["json"]["unread"] for e in replayed] == [3, 3]
    # And the query parameter does the same, even from another user's notification id
    foreign = Notification.objects.filter(recipient=a2).order_by("pk").first()
    by_query = server.stream(cookie, f"?last_event_id={foreign.pk - 1}")
    expected = list(
        Notification.objects.filter(recipient=a1, pk__gt=foreign.pk - 1)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert by_query.wait_events(len(expected)) and by_query.ids() == expected
    # And an id past the user's newest (a reset database, a forged id) holds nothing back
    ahead = server.stream(cookie, Last_Event_ID=str(2**63 - 1))
    # And live events still follow on the replayed streams
    last = notify(Audience.users([a1.pk]), "after", title="after")
    again.wait_events(3)
    assert again.ids()[-1] == mine(last, a1)
    assert [int(e["id"]) for e in ahead.wait_events(1)] == [mine(last, a1)]
    for s in (again, by_query, ahead):
        s.close()


def test_stream_refuses_what_it_must(start_server, people, channel):
    # Given a server whose users may open two streams each
    server = start_server({"LIVE": "postgres", "LIVE_CHANNEL": channel, "STREAM_MAX_PER_USER": 2})
    cookie = session_cookie(people["admins"][0])
    # Then anonymous requests get 401 JSON
    status, body = server.get("/notifications/stream/")
    assert (status, body) == (401, {"error": "authentication required"})
    # And a malformed Last-Event-ID gets 400 with a message, never 500
    for bad in ("abc", "-1", "1.5", "9" * 30):
        refused = server.stream(cookie, Last_Event_ID=bad)
        assert refused.status == 400, bad
        assert "Last-Event-ID" in refused.body["error"]
    refused = server.stream(cookie, "?last_event_id=%00")
    assert refused.status == 400
    # And the third stream of one user gets 429, until one of the two closes
    streams = [server.stream(cookie), server.stream(cookie)]
    assert [s.status for s in streams] == [200, 200]
    third = server.stream(cookie)
    assert third.status == 429
    assert "too many open streams" in third.body["error"]
    # (another user is not limited by the first one's streams)
    other = server.stream(session_cookie(people["admins"][1]))
    assert other.status == 200
    streams[0].close()
    staff_cookie = people["staff_cookie"]
    wait_for(
        lambda: server.status(staff_cookie)["connections"] == 2,
        timeout=30,
        what="the closed stream to leave the hub",
    )
    fourth = server.stream(cookie)
    assert fourth.status == 200
    # And the status is for staff only
    assert server.get("/notifications/stream/?status=1", cookie)[0] == 403
    for s in (*streams, fourth, other):
        s.close()


@pytest.mark.redis
@pytest.mark.worker
def test_a_rundramatiq_worker_on_redis_reaches_the_stream(
    start_server, start_worker, redis_broker, people, channel, settings
):
    # Given a worker, the server and this process all on the Redis broker, LIVE "auto"
    live = {"LIVE_CHANNEL": channel}
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", **live}
    env = {"TEST_OFFCHAT_NOTIFY": json.dumps(live)}
    worker = start_worker("redis", env=env)
    server = start_server(live, TEST_BROKER="redis")
    admins = people["admins"]
    streams = [server.stream(session_cookie(user)) for user in admins]
    of_other = server.stream(session_cookie(people["other"]))
    wait_subscribed(server, people["staff_cookie"])
    assert server.status(people["staff_cookie"])["transport"] == "redis"
    worker.wait_ready()
    # When a message notifies the admins, delivered by the worker
    event = notify(Audience.role("admin"), "message.sent", title="From the worker")
    # Then every admin's stream holds their row; the other user's holds nothing of it
    for stream, user in zip(streams, admins, strict=True):
        (got,) = stream.wait_events(1, timeout=60)
        assert int(got["id"]) == mine(event, user)
    later = notify(Audience.users([people["other"].pk]), "direct", title="Yours")
    (got,) = of_other.wait_events(1, timeout=60)
    assert int(got["id"]) == mine(later, people["other"])
    for stream in (*streams, of_other):
        stream.close()


@pytest.mark.redis
def test_a_lost_redis_delays_the_stream_and_never_fails_delivery(
    start_server, people, redis_server, channel, settings, caplog
):
    # Given a server and this process on a Redis of the test's own, and an open stream
    live = {"LIVE": "redis", "LIVE_REDIS_URL": redis_server.url(), "LIVE_CHANNEL": channel}
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", **live}
    server = start_server(live)
    admin = people["admins"][0]
    stream = server.stream(session_cookie(admin))
    staff_cookie = people["staff_cookie"]
    wait_subscribed(server, staff_cookie)
    # When Redis goes away
    redis_server.stop()
    wait_for(
        lambda: not server.status(staff_cookie)["subscribed"],
        timeout=30,
        what="the subscriber to notice",
    )
    # Then a delivery meanwhile still writes its rows (the publish fails, and is logged)
    event = notify(Audience.users([admin.pk]), "while.down", title="down")
    assert Notification.objects.filter(event=event, recipient=admin).exists()
    assert "Live publish" in caplog.text
    # And once Redis is back, the subscriber reconnects and the stream catches up from the table
    redis_server.start()
    (got,) = stream.wait_events(1, timeout=60)
    assert int(got["id"]) == mine(event, admin)
    assert server.status(staff_cookie)["subscriber_failures"] >= 1
    # And live events flow again
    later = notify(Audience.users([admin.pk]), "after", title="up")
    stream.wait_events(2, timeout=30)
    assert stream.ids() == [mine(event, admin), mine(later, admin)]
    stream.close()
