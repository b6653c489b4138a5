"""The web push channel against a local push service that checks VAPID and decrypts."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from py_vapid import Vapid02

from offchat_notify import Audience, notify
from offchat_notify.channels import deliver as channel_jobs
from offchat_notify.channels import webpush
from offchat_notify.models import ChannelSend, Event, PushSubscription
from offchat_notify.preferences import mute
from tests.helpers import free_port
from tests.push_server import PushServer

pytestmark = pytest.mark.django_db

VAPID = Vapid02()
VAPID.generate_keys()
PRIVATE_PEM = VAPID.private_pem().decode()
PUBLIC = webpush.public_key(VAPID)
SUBJECT = "mailto:ops@example.com"
OTHER = Vapid02()
OTHER.generate_keys()
OTHER_PUBLIC = webpush.public_key(OTHER)
SETTINGS = {
    "BACKEND": "sync",
    "WEBPUSH_VAPID_PRIVATE_KEY": PRIVATE_PEM,
    "WEBPUSH_VAPID_PUBLIC_KEY": PUBLIC,
    "WEBPUSH_VAPID_SUBJECT": SUBJECT,
}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.OFFCHAT_NOTIFY = SETTINGS


@pytest.fixture
def server():
    with PushServer() as server:
        yield server


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    def send(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return notify(*args, **kwargs)

    return send


def subscribe(server, user, path):
    info = server.subscription(path)
    return PushSubscription.objects.create(user=user, **info)


def states():
    return {s.recipient_id: (s.state, s.last_error) for s in ChannelSend.objects.all()}


def test_each_device_gets_the_encrypted_payload_signed_with_vapid(make_users, server, send):
    alice, bob, carol = make_users(3)
    phone, laptop = subscribe(server, alice, "/a1"), subscribe(server, alice, "/a2")
    subscribe(server, bob, "/b1")
    mute(bob, "webpush")
    event = send(
        Audience.users([alice, bob, carol]),
        "comment.posted",
        title="Hi",
        body="A reply",
        channels=["webpush"],
    )
    assert server.errors == []
    assert {r.path for r in server.received} == {"/a1", "/a2"}  # bob muted, carol has none
    got = server.at("/a1")[0]
    assert got.payload == {
        "title": "Hi",
        "body": "A reply",
        "url": None,
        "tag": f"offchat-notify-{event.pk}",
        "verb": "comment.posted",
        "id": event.pk,
    }
    assert got.vapid_key == PUBLIC and got.claims["sub"] == SUBJECT
    assert got.headers["ttl"] == "86400"
    send_row = ChannelSend.objects.get(recipient=alice)
    assert send_row.state == "sent"
    assert send_row.provider_message_id.startswith(f"{server.base}/messages/a")
    # carol never turned push on: no send is recorded for her at all
    assert not ChannelSend.objects.filter(recipient=carol).exists()
    phone.refresh_from_db(), laptop.refresh_from_db()
    assert phone.last_used_at and laptop.last_used_at


def test_a_gone_subscription_is_deleted_and_the_other_device_still_counts(make_users, server, send):
    alice, bob = make_users(2)
    subscribe(server, alice, "/old"), subscribe(server, alice, "/new")
    only = subscribe(server, bob, "/bob")
    server.status.update({"/old": 410, "/bob": 404})
    send(Audience.users([alice, bob]), "x", channels=["webpush"])
    assert set(PushSubscription.objects.values_list("endpoint", flat=True)) == {server.url("/new")}
    result = states()
    assert result[alice.pk][0] == "sent"
    assert result[bob.pk][0] == "failed" and "404" in result[bob.pk][1]
    assert not PushSubscription.objects.filter(pk=only.pk).exists()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_push_service_is_transient_and_keeps_the_subscription(make_users, server, status):
    alice, bob = make_users(2)
    subscribe(server, alice, "/busy"), subscribe(server, bob, "/fine")
    server.status["/busy"] = status
    event = Event.objects.create(verb="x", title="t", audience={}, channels=["webpush"])
    rows = [
        ChannelSend.objects.create(event=event, recipient=user, channel="webpush")
        for user in (alice, bob)
    ]
    outcome = webpush.send_batch(list(ChannelSend.objects.select_related("event")))
    assert outcome.sent.keys() == {rows[1].pk} and outcome.failed == {}
    assert str(status) in outcome.transient
    assert PushSubscription.objects.count() == 2


def test_the_job_retries_what_was_transient_and_only_that(make_users, server, send):
    alice, bob = make_users(2)
    subscribe(server, alice, "/busy"), subscribe(server, bob, "/fine")
    server.status["/busy"] = 503
    event = send(Audience.users([alice, bob]), "x", channels=["webpush"])
    assert states()[alice.pk][0] == "pending" and states()[bob.pk][0] == "sent"
    server.status["/busy"] = 201
    assert channel_jobs.deliver_channel(event.pk, "webpush") == 1
    assert len(server.at("/fine")) == 1 and len(server.at("/busy")) == 2
    assert {state for state, _ in states().values()} == {"sent"}


def test_an_unreachable_push_service_is_transient(make_users):
    (alice,) = make_users(1)
    with PushServer() as server:  # its keys; nothing listens at the endpoint
        info = server.subscription("/x")
    info["endpoint"] = f"http://127.0.0.1:{free_port()}/x"
    PushSubscription.objects.create(user=alice, **info)
    event = Event.objects.create(verb="x", audience={}, channels=["webpush"])
    ChannelSend.objects.create(event=event, recipient=alice, channel="webpush")
    outcome = webpush.send_batch(list(ChannelSend.objects.select_related("event")))
    assert outcome.sent == {} and outcome.failed == {}
    assert "ConnectionError" in outcome.transient


@pytest.mark.parametrize(("status", "message"), [(400, "400"), (413, "413"), (307, "redirect")])
def test_a_refused_message_fails_for_good(make_users, server, send, status, message):
    (alice,) = make_users(1)
    subscribe(server, alice, "/a")
    server.status["/a"] = status
    send(Audience.users([alice]), "x", channels=["webpush"])
    state, error = states()[alice.pk]
    assert state == "failed" and message in error.lower()
    assert PushSubscription.objects.count() == 1
    assert len(server.received) == 1  # the redirect was not followed


def test_a_long_body_is_cut_to_fit_the_payload_limit(make_users, server, send):
    (alice,) = make_users(1)
    subscribe(server, alice, "/a")
    body = 'é"\n<' * 5000  # each character grows when encoded
    send(Audience.users([alice]), "x", title="T" * 255, body=body, channels=["webpush"])
    assert server.errors == []
    got = server.at("/a")[0].payload
    assert got["title"] == "T" * 255 and got["body"].endswith("…")
    assert body.startswith(got["body"][:-1].rstrip())
    encoded = json.dumps(got, ensure_ascii=False, separators=(",", ":")).encode()
    assert webpush.PAYLOAD_LIMIT - 8 <= len(encoded) <= webpush.PAYLOAD_LIMIT


def test_payload_never_exceeds_the_limit():
    event = Event(pk=7, verb="v", title="t" * 200, body="\u2028" * 3000, audience={})
    for limit in (300, 1000, webpush.PAYLOAD_LIMIT):
        assert len(webpush.payload(event, limit)) <= limit
    assert (
        json.loads(webpush.payload(Event(pk=1, verb="v", body="short", audience={})))["body"]
        == "short"
    )


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"})
def test_without_vapid_keys_nothing_is_sent_and_the_sends_wait(make_users, server, send):
    (alice,) = make_users(1)
    subscribe(server, alice, "/a")
    send(Audience.users([alice]), "x", channels=["webpush"])
    assert server.received == []
    state, error = states()[alice.pk]
    assert state == "pending" and "WEBPUSH_VAPID_PRIVATE_KEY" in error


def test_one_query_loads_the_subscriptions_of_a_batch(
    make_users, server, django_assert_num_queries
):
    users = make_users(4)
    for i, user in enumerate(users):
        subscribe(server, user, f"/{i}")
    event = Event.objects.create(verb="x", audience={}, channels=["webpush"])
    for user in users:
        ChannelSend.objects.create(event=event, recipient=user, channel="webpush")
    batch = list(ChannelSend.objects.select_related("event"))
    # the subscriptions, then last_used_at (no target: no query; nothing gone: no delete)
    with django_assert_num_queries(2):
        outcome = webpush.send_batch(batch)
    assert len(outcome.sent) == 4


def key_checks():
    return [m for m in webpush.check_webpush() if m.id.startswith("offchat_notify.")]


def test_check_is_quiet_with_a_good_pair():
    assert key_checks() == []


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"})
def test_check_is_quiet_when_web_push_is_not_set_up():
    assert key_checks() == []


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "WEBPUSH_VAPID_PUBLIC_KEY": PUBLIC})
def test_check_warns_when_some_keys_are_missing():
    assert [m.id for m in key_checks()] == ["offchat_notify.W013"]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "CHANNELS_BY_VERB": {"x": ["webpush"]}})
def test_check_errs_when_webpush_is_used_without_keys():
    assert [m.id for m in key_checks()] == ["offchat_notify.E018"]


@pytest.mark.parametrize(
    ("private", "public"),
    [
        ("not a key at all", PUBLIC),
        (PRIVATE_PEM, OTHER_PUBLIC),  # a key, but of another pair
    ],
)
def test_check_errs_on_a_bad_key_and_never_shows_it(settings, private, public):
    settings.OFFCHAT_NOTIFY = {
        **SETTINGS,
        "WEBPUSH_VAPID_PRIVATE_KEY": private,
        "WEBPUSH_VAPID_PUBLIC_KEY": public,
    }
    messages = key_checks()
    assert [m.id for m in messages] == ["offchat_notify.E018"]
    text = f"{messages[0].msg} {messages[0].hint}"
    assert private not in text and public not in text and "MIG" not in text


def test_a_malformed_private_key_leaves_the_sends_pending_without_showing_it(
    settings, make_users, server, send
):
    settings.OFFCHAT_NOTIFY = {**SETTINGS, "WEBPUSH_VAPID_PRIVATE_KEY": "c2VjcmV0LW5vdC1hLWtleQ"}
    (alice,) = make_users(1)
    subscribe(server, alice, "/a")
    send(Audience.users([alice]), "x", channels=["webpush"])
    state, error = states()[alice.pk]
    assert state == "pending" and "not a P-256 private key" in error
    assert "c2VjcmV0" not in error and server.received == []


def test_without_the_extra_sends_wait_and_a_verb_using_web_push_is_an_error(monkeypatch):
    monkeypatch.setattr(webpush, "INSTALLED", False)
    assert "pip install" in webpush.send_batch([]).transient
    with override_settings(OFFCHAT_NOTIFY={**SETTINGS, "CHANNELS_BY_VERB": {"x": ["webpush"]}}):
        assert [m.id for m in key_checks()] == ["offchat_notify.E018"]
