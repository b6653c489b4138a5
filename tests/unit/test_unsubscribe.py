"""RFC 8058 one-click unsubscribe: signed, expiring tokens and the endpoint that needs no login."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client, override_settings
from django.urls import reverse

from offchat_notify.channels import unsubscribe
from offchat_notify.preferences import is_muted

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_users):
    return make_users(1)[0]


def url_for(token: str) -> str:
    return reverse("offchat_notify_inbox:unsubscribe", args=[token])


def test_get_shows_a_form_and_changes_nothing(client, alice):
    response = client.get(url_for(unsubscribe.make_token(alice.pk, "email", "comment.posted")))
    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert b"comment.posted" in response.content
    assert not is_muted(alice, "email", "comment.posted")
    assert "no-store" in response["Cache-Control"]


def test_a_one_click_post_without_login_or_csrf_token_mutes_that_verb(alice):
    client = Client(enforce_csrf_checks=True)  # a mail client: no cookie, no token
    token = unsubscribe.make_token(alice.pk, "email", "comment.posted")
    response = client.post(url_for(token), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert is_muted(alice, "email", "comment.posted")
    assert not is_muted(alice, "email", "other")
    assert client.post(url_for(token)).status_code == 200  # twice is harmless


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_token_is_refused(client, alice, method):
    token = unsubscribe.make_token(alice.pk, "email", "x")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = getattr(client, method)(url_for(forged))
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert not is_muted(alice, "email", "x")


def test_a_token_for_another_purpose_is_refused(client, alice):
    other = signing.TimestampSigner(salt="other").sign_object(
        {"u": str(alice.pk), "c": "email", "v": "x"}
    )
    assert client.post(url_for(other)).status_code == 400
    assert not is_muted(alice, "email", "x")


def test_an_expired_token_is_refused(client, alice, monkeypatch):
    old = signing.b62_encode(int(signing.time.time()) - 91 * 24 * 3600)
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: old)
    token = unsubscribe.make_token(alice.pk, "email", "x")
    monkeypatch.undo()
    response = client.post(url_for(token))
    assert response.status_code == 400
    assert b"expired" in response.content
    assert not is_muted(alice, "email", "x")


def test_a_token_for_a_deleted_user_is_refused(client, alice):
    token = unsubscribe.make_token(alice.pk, "email", "x")
    alice.delete()
    assert client.post(url_for(token)).status_code == 400


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MANDATORY_VERBS": ["security"]})
def test_a_verb_made_mandatory_since_cannot_be_muted(client, alice):
    response = client.post(url_for(unsubscribe.make_token(alice.pk, "email", "security")))
    assert response.status_code == 400
    assert b"mandatory" in response.content


def test_other_methods_get_405(client, alice):
    response = client.put(url_for(unsubscribe.make_token(alice.pk, "email", "x")))
    assert response.status_code == 405


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "EMAIL_SITE_URL": "https://example.com/"})
def test_the_url_is_absolute_and_round_trips(alice):
    url = unsubscribe.url(alice.pk, "email", "x")
    assert url.startswith("https://example.com/notifications/unsubscribe/")
    token = url.rsplit("/", 2)[-2]
    assert unsubscribe.read_token(token) == unsubscribe.Unsubscribe(str(alice.pk), "email", "x")
