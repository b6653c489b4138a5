"""The live stream's view, settings and in-process transport, without a server."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient, Client

from offchat_notify import Audience, notify
from offchat_notify.channels import live
from offchat_notify.conf import find_problems
from offchat_notify.inbox.hub import get_hub
from offchat_notify.inbox.sse import EventStream
from offchat_notify.models import Notification

URL = "/notifications/stream/"


@pytest.fixture
def user(make_users):
    (user,) = make_users(1)
    return user


def aget(user, path=URL, **headers):
    client = AsyncClient()
    if user is not None:
        client.force_login(user)
    return async_to_sync(client.get)(path, headers=headers)


def test_under_wsgi_the_stream_says_it_needs_asgi(user):
    client = Client()
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 501
    assert "ASGI" in response.json()["error"]
    assert "unread/" in response.json()["error"]


def test_anonymous_gets_401_json(db):
    response = aget(None)
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("bad", ["abc", "-3", "1e3", "0x10", "1 2", "9" * 20])
def test_a_malformed_last_event_id_gets_400(user, bad):
    response = aget(user, **{"Last-Event-ID": bad})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["error"]
    response = aget(user, f"{URL}?last_event_id={bad}")
    assert response.status_code == 400


def test_digits_of_other_scripts_are_not_ids(user):
    response = aget(user, f"{URL}?last_event_id=%D9%A1%D9%A2")  # Arabic-Indic "12"
    assert response.status_code == 400


def test_post_gets_405(user):
    client = AsyncClient(enforce_csrf_checks=False)
    client.force_login(user)
    response = async_to_sync(client.post)(URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET"


def test_live_off_answers_503(user, settings):
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "LIVE": None}
    response = aget(user)
    assert response.status_code == 503
    assert "unread/" in response.json()["error"]


def test_the_status_is_for_staff_only(make_users):
    (user,) = make_users(1)
    (staff,) = make_users(1, is_staff=True)
    assert aget(user, f"{URL}?status=1").status_code == 403
    body = aget(staff, f"{URL}?status=1").json()
    assert body["connections"] == 0
    assert body["subscribed"] is False


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"LIVE": "kafka"}, "LIVE"),
        ({"LIVE_REDIS_URL": "http://example.com"}, "LIVE_REDIS_URL"),
        ({"LIVE_CHANNEL": ""}, "LIVE_CHANNEL"),
        ({"LIVE_CHANNEL": "x" * 64}, "LIVE_CHANNEL"),
        ({"STREAM_HEARTBEAT": 0}, "STREAM_HEARTBEAT"),
        ({"STREAM_MAX_PER_USER": 0}, "STREAM_MAX_PER_USER"),
        ({"STREAM_REPLAY": True}, "STREAM_REPLAY"),
    ],
)
def test_bad_live_settings_are_named(raw, key):
    (problem,) = find_problems(raw)
    assert problem.key == key


def test_auto_picks_postgres_without_redis_and_local_elsewhere(settings):
    from django.db import connection

    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync"}  # the stub broker: not Redis
    expected = live.POSTGRES if connection.vendor == "postgresql" else live.LOCAL
    assert live.transport() == expected
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "LIVE_REDIS_URL": "redis://127.0.0.1:1/0"}
    assert live.transport() == live.REDIS
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "LIVE": None}
    assert live.transport() is None


def test_page_messages_round_trip():
    assert live.decode(live.encode(7, None, 12)) == (7, None, 12)
    assert json.loads(live.encode(7, 3, None)) == {"e": 7, "a": 3, "b": None}
    for bad in ("[]", '{"e": "7"}', '{"e": true}', "nope"):
        with pytest.raises(ValueError):
            live.decode(bad)


def test_a_failed_publish_never_fails_the_delivery(transactional_db, user, settings, caplog):
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "LIVE": "redis"}  # and no Redis to publish to
    event = notify(Audience.users([user.pk]), "still.delivered")
    assert Notification.objects.filter(event=event, recipient=user).exists()
    assert "Live publish" in caplog.text


def test_local_transport_feeds_the_recipients_stream_only(transactional_db, make_users, settings):
    # Given the sync backend publishing in-process, and two users' streams
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "LIVE": "local"}
    user, other = make_users(2)

    async def scenario() -> tuple[str, bool, int, int]:
        hub = get_hub()
        mine, theirs = hub.add(user.pk, 5), hub.add(other.pk, 5)
        events = EventStream(hub, mine, None, 100, latest=0).__aiter__()
        assert await events.__anext__() == "retry: 3000\n\n"
        pending = asyncio.ensure_future(events.__anext__())
        while not hub.subscribed:
            await asyncio.sleep(0.01)
        # When the user is notified
        await sync_to_async(notify)(Audience.users([user.pk]), "hello", title="Hi")
        chunk = await asyncio.wait_for(pending, 30)
        await events.aclose()  # as a disconnect does
        left = hub.stats()["connections"]
        hub.remove(theirs)
        await hub.stop()
        queued = [theirs.queue.get_nowait() for _ in range(theirs.queue.qsize())]
        return chunk, [e for e in queued if isinstance(e, tuple)], left, hub.stats()["connections"]

    chunk, others_rows, left, finally_left = async_to_sync(scenario)()
    # Then the user's stream holds it, the other's holds nothing, and closing frees it
    row = Notification.objects.get(recipient=user)
    head, _, data = chunk.partition("data: ")
    assert head == f"id: {row.pk}\nevent: notification\n"
    sent = json.loads(data)
    assert (sent["id"], sent["title"], sent["unread"]) == (row.pk, "Hi", 1)
    assert others_rows == []
    assert (left, finally_left) == (1, 0)


def check_ids(settings, **live):
    from offchat_notify.checks import check_live

    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", **live}
    return [m.id for m in check_live()]


def test_checks_name_a_live_transport_that_cannot_work(settings):
    # The test broker is the stub: not Redis
    assert check_ids(settings, LIVE="redis") == ["offchat_notify.E016"]
    assert check_ids(settings, LIVE="redis", LIVE_REDIS_URL="redis://127.0.0.1:6379/0") == []
    assert check_ids(settings, LIVE=None) == []
    assert check_ids(settings, LIVE="local") == []  # sync: delivers in the web process


def test_checks_warn_of_an_in_process_stream_with_a_worker_backend(settings):
    from offchat_notify.checks import check_live

    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", "LIVE": "local"}
    assert [m.id for m in check_live()] == ["offchat_notify.W011"]


def test_checks_refuse_postgres_on_another_database(settings):
    from django.db import connection

    expected = [] if connection.vendor == "postgresql" else ["offchat_notify.E016"]
    assert check_ids(settings, LIVE="postgres") == expected
