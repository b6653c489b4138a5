"""Preferences: mute, unmute, is_muted, mandatory verbs, the SQL filter and the JSON endpoint."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from offchat_notify import preferences
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import InvalidNotification, NotifyConfigurationError
from offchat_notify.models import Preference
from offchat_notify.preferences import is_muted, mute, unmute

pytestmark = pytest.mark.django_db

URL = reverse("offchat_notify_inbox:preferences")
MANDATORY = {"OFFCHAT_NOTIFY": {"BACKEND": "sync", "MANDATORY_VERBS": ["account.security"]}}


@pytest.fixture
def alice(make_users):
    return make_users(1)[0]


def test_muting_one_verb_mutes_that_verb_on_that_channel_only(alice):
    mute(alice, "email", "comment.posted")
    assert is_muted(alice, "email", "comment.posted")
    assert not is_muted(alice, "email", "other.verb")
    assert not is_muted(alice, "email")  # the channel as a whole is not muted
    assert not is_muted(alice, "webpush", "comment.posted")


def test_muting_a_channel_mutes_every_verb_and_unmute_lifts_it(alice):
    mute(alice, "email")
    mute(alice, "email")  # twice is harmless
    assert is_muted(alice, "email") and is_muted(alice, "email", "any.verb")
    unmute(alice, "email")
    unmute(alice, "email")
    assert not is_muted(alice, "email", "any.verb")
    assert Preference.objects.count() == 0


def test_unmuting_the_channel_keeps_the_verbs_muted_one_by_one(alice):
    mute(alice, "email", "a")
    mute(alice, "email")
    unmute(alice, "email")
    assert is_muted(alice, "email", "a") and not is_muted(alice, "email", "b")


@override_settings(**MANDATORY)
def test_a_mandatory_verb_cannot_be_muted_and_survives_a_channel_mute(alice):
    with pytest.raises(InvalidNotification, match="'account.security' is mandatory"):
        mute(alice, "email", "account.security")
    mute(alice, "email")
    assert not is_muted(alice, "email", "account.security")
    assert is_muted(alice, "email", "other")


@pytest.mark.parametrize(
    ("channel", "verb", "message"),
    [
        ("sms", None, "Unknown channel 'sms'; the channels are 'email', 'webpush'"),
        (None, None, "Unknown channel None"),
        ("email", "", "A verb must be a non-empty string"),
        ("email", 3, "A verb must be a non-empty string"),
        ("email", "x" * 256, "at most 255 characters"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(alice, channel, verb, message):
    with pytest.raises(InvalidNotification, match=message):
        mute(alice, channel, verb)
    assert Preference.objects.count() == 0


@pytest.mark.parametrize("value", ["security", [""], [1], None])
def test_mandatory_verbs_must_be_a_list_of_verbs(value):
    with (
        override_settings(OFFCHAT_NOTIFY={"MANDATORY_VERBS": value}),
        pytest.raises(NotifyConfigurationError, match="MANDATORY_VERBS"),
    ):
        get_settings()


@override_settings(**MANDATORY)
def test_unmuted_leaves_out_muted_users_in_one_query(make_users, django_assert_num_queries):
    users = make_users(4)
    mute(users[0], "email")
    mute(users[1], "email", "comment.posted")
    mute(users[2], "webpush")
    qs = get_user_model().objects.filter(pk__in=[u.pk for u in users])
    with django_assert_num_queries(1):
        ids = set(
            qs.filter(preferences.unmuted("email", "comment.posted")).values_list("pk", flat=True)
        )
    assert ids == {users[2].pk, users[3].pk}
    assert set(
        qs.filter(preferences.unmuted("email", "account.security")).values_list("pk", flat=True)
    ) == {u.pk for u in users}


# The endpoint


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client


def post(client, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", **kwargs)


def test_the_url_is_under_the_inbox():
    assert URL == "/notifications/preferences/"


@override_settings(**MANDATORY)
def test_get_lists_channels_mutes_and_mandatory_verbs(alice_client, alice):
    mute(alice, "email", "b")
    mute(alice, "email")
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "channels": ["email", "webpush"],
        "mutes": [{"channel": "email", "verb": None}, {"channel": "email", "verb": "b"}],
        "mandatory": ["account.security"],
    }
    assert "no-store" in response["Cache-Control"]


def test_post_mutes_and_unmutes(alice_client, alice):
    response = post(alice_client, {"channel": "webpush", "verb": "x", "muted": True})
    assert response.status_code == 200
    assert response.json()["mutes"] == [{"channel": "webpush", "verb": "x"}]
    assert is_muted(alice, "webpush", "x")
    response = post(alice_client, {"channel": "webpush", "verb": "x", "muted": False})
    assert response.json()["mutes"] == []


@override_settings(**MANDATORY)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "the body must be JSON"),
        ([1], "the body must be a JSON object"),
        ({"channel": "email", "muted": True, "extra": 1}, "and nothing else"),
        ({"channel": "email", "muted": "yes"}, '"muted" must be true or false'),
        ({"channel": "sms", "muted": True}, "Unknown channel 'sms'"),
        ({"channel": "email", "verb": 5, "muted": True}, "A verb must be"),
        ({"channel": "email", "verb": "account.security", "muted": True}, "is mandatory"),
        ("x" * 5000, "larger than 4096 bytes"),
    ],
)
def test_bad_posts_answer_400_with_a_message(alice_client, body, message):
    response = post(alice_client, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Preference.objects.count() == 0


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_users_get_401(client, method):
    response = getattr(client, method)(URL)
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}


def test_post_needs_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    body = {"channel": "email", "verb": None, "muted": True}
    assert post(client, body).status_code == 403
    assert not is_muted(alice, "email")
    client.cookies["csrftoken"] = "a" * 32
    assert post(client, body, headers={"X-CSRFToken": "a" * 32}).status_code == 200
    assert is_muted(alice, "email")


def test_other_methods_get_405(alice_client):
    response = alice_client.delete(URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


@pytest.mark.parametrize("model", ["preference", "channelsend"])
def test_the_admin_lists_preferences_and_channel_sends(admin_client, alice, model):
    mute(alice, "email")
    response = admin_client.get(reverse(f"admin:offchat_notify_{model}_changelist"))
    assert response.status_code == 200
