"""The web push endpoints: key, subscribe, unsubscribe (auth, CSRF, validation, ownership)."""

from __future__ import annotations

import base64
import json
import os

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from offchat_notify.inbox import push
from offchat_notify.models import PushSubscription

pytestmark = pytest.mark.django_db

KEY = reverse("offchat_notify_inbox:push_key")
SUBSCRIBE = reverse("offchat_notify_inbox:push_subscribe")
UNSUBSCRIBE = reverse("offchat_notify_inbox:push_unsubscribe")
PUBLIC = "BNc" + "A" * 84  # shape only: the check tests a real pair
ENDPOINT = "https://push.example.com/send/abc"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def body(endpoint=ENDPOINT, p256dh=None, auth=None):
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {
            "p256dh": p256dh or b64(b"\x04" + os.urandom(64)),
            "auth": auth or b64(os.urandom(16)),
        },
    }


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.OFFCHAT_NOTIFY = {"BACKEND": "sync", "WEBPUSH_VAPID_PUBLIC_KEY": PUBLIC}


@pytest.fixture
def users(make_users):
    return make_users(2)


def client_of(user):
    client = Client()
    client.force_login(user)
    return client


def post(client, url, data, **kwargs):
    raw = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(url, raw, content_type="application/json", **kwargs)


def test_the_urls_are_under_the_inbox():
    assert (KEY, SUBSCRIBE, UNSUBSCRIBE) == (
        "/notifications/push/key/",
        "/notifications/push/subscribe/",
        "/notifications/push/unsubscribe/",
    )


def test_key_gives_the_public_key(users):
    response = client_of(users[0]).get(KEY)
    assert response.status_code == 200 and response.json() == {"public_key": PUBLIC}
    assert "no-store" in response["Cache-Control"]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"})
def test_key_without_web_push_is_404_with_a_message(users):
    response = client_of(users[0]).get(KEY)
    assert response.status_code == 404 and "not configured" in response.json()["error"]


@pytest.mark.parametrize("url", [KEY, SUBSCRIBE, UNSUBSCRIBE])
def test_anonymous_users_get_401(client, url):
    assert client.get(url).status_code == 401
    assert post(client, url, body()).status_code == 401


def test_wrong_methods_get_405(users):
    client = client_of(users[0])
    assert client.get(SUBSCRIBE).status_code == 405
    assert post(client, KEY, {}).status_code == 405


def test_subscribe_stores_then_updates_and_unsubscribe_deletes(users):
    client = client_of(users[0])
    data = body()
    response = post(client, SUBSCRIBE, data, headers={"User-Agent": "Firefox"})
    assert response.status_code == 201 and response.json()["created"] is True
    sub = PushSubscription.objects.get()
    assert (sub.user, sub.endpoint, sub.p256dh, sub.user_agent) == (
        users[0],
        ENDPOINT,
        data["keys"]["p256dh"],
        "Firefox",
    )
    renewed = body()
    response = post(client, SUBSCRIBE, renewed)
    assert response.status_code == 200 and response.json()["created"] is False
    assert PushSubscription.objects.get().auth == renewed["keys"]["auth"]
    response = post(client, UNSUBSCRIBE, {"endpoint": ENDPOINT})
    assert response.json() == {"deleted": 1} and not PushSubscription.objects.exists()
    assert post(client, UNSUBSCRIBE, {"endpoint": ENDPOINT}).json() == {"deleted": 0}


def test_an_endpoint_moves_to_the_user_who_subscribes_it_last(users):
    alice, bob = users
    post(client_of(alice), SUBSCRIBE, body())
    assert post(client_of(bob), SUBSCRIBE, body()).status_code == 200
    assert PushSubscription.objects.get().user == bob


def test_a_user_cannot_unsubscribe_another_users_endpoint(users):
    alice, bob = users
    post(client_of(alice), SUBSCRIBE, body())
    assert post(client_of(bob), UNSUBSCRIBE, {"endpoint": ENDPOINT}).json() == {"deleted": 0}
    assert PushSubscription.objects.get().user == alice


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not json", "JSON"),
        ("[1]", "JSON object"),
        ("[" * 4000, "JSON"),
        ({"keys": {}}, "endpoint"),
        (body(endpoint="http://push.example.com/x"), "https://"),
        (body(endpoint="https:///nohost"), "https://"),
        (body(endpoint="https://push.example.com/" + "a" * 2000), "2000"),
        (body(endpoint="javascript:alert(1)"), "https://"),
        (body(endpoint="https://127.0.0.1/x"), "IP address"),
        (body(endpoint="https://[::1]/x"), "IP address"),
        (body(endpoint="https://localhost/x"), "https://"),
        (body(endpoint="https://push.example.com:99999/x"), "https://"),
        ({"endpoint": ENDPOINT}, '"keys"'),
        (body(p256dh="!!!"), "p256dh"),
        (body(p256dh=b64(os.urandom(32))), "65 bytes"),
        (body(p256dh=b64(b"\x05" + os.urandom(64))), "p256dh"),
        (body(auth=b64(os.urandom(8))), "16 bytes"),
        (body(auth=12), "auth"),
        ({"endpoint": ENDPOINT, "keys": {"p256dh": "x" * 5000}}, "4096"),
    ],
)
def test_bad_subscriptions_answer_400_with_a_message(users, data, message):
    response = post(client_of(users[0]), SUBSCRIBE, data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(("data", "message"), [("{", "JSON"), ({"endpoint": 3}, "endpoint")])
def test_bad_unsubscribes_answer_400(users, data, message):
    response = post(client_of(users[0]), UNSUBSCRIBE, data)
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize("url", [SUBSCRIBE, UNSUBSCRIBE])
def test_posts_need_the_csrf_token(users, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users[0])
    assert post(client, url, body()).status_code == 403
    assert not PushSubscription.objects.exists()
    client.cookies["csrftoken"] = "a" * 32
    assert post(client, url, body(), headers={"X-CSRFToken": "a" * 32}).status_code in (200, 201)


def test_a_user_keeps_the_newest_subscriptions_only(users):
    client = client_of(users[0])
    post(client_of(users[1]), SUBSCRIBE, body(endpoint="https://push.example.com/bob"))
    for i in range(push.MAX_PER_USER + 2):
        assert post(client, SUBSCRIBE, body(endpoint=f"{ENDPOINT}/{i}")).status_code == 201
    mine = PushSubscription.objects.filter(user=users[0])
    assert mine.count() == push.MAX_PER_USER
    assert not mine.filter(endpoint__in=[f"{ENDPOINT}/0", f"{ENDPOINT}/1"]).exists()
    assert PushSubscription.objects.filter(user=users[1]).count() == 1
