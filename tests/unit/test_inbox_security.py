"""The inbox API never shows or changes another user's notifications, and fails safe.

Anonymous requests get 401 on every URL, POSTs need the CSRF token, and bad
input gets a 400 with a message, never a 500.
"""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from offchat_notify.inbox import cursor
from offchat_notify.models import Notification

from .inbox_rows import deliver, inbox_ids

pytestmark = pytest.mark.django_db

LIST = reverse("offchat_notify_inbox:list")
READ_ALL = reverse("offchat_notify_inbox:read_all")


@pytest.fixture
def users(make_users):
    """Alice and Bob, with interleaved inboxes (some notifications shared)."""
    alice, bob = make_users(2)
    for n in range(10):
        deliver([alice] if n % 3 else [alice, bob], verb=f"v{n}")
        deliver([bob], verb=f"bob-only-{n}")
    return alice, bob


def logged_in(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def walk(client: Client, query: str = "limit=3") -> list[int]:
    ids, url = [], f"{LIST}?{query}"
    while url:
        body = client.get(url).json()
        ids += [r["id"] for r in body["results"]]
        url = f"{LIST}?{query}&cursor={body['next']}" if body["next"] else None
    return ids


def test_each_user_lists_only_their_own_notifications(users):
    alice, bob = users
    assert walk(logged_in(alice)) == inbox_ids(alice)
    assert walk(logged_in(bob)) == inbox_ids(bob)
    assert not set(inbox_ids(alice)) & set(inbox_ids(bob))


def test_another_users_cursor_only_moves_within_ones_own_inbox(users):
    # Given: a cursor from Bob's inbox, pointing just below Bob's newest
    alice, bob = users
    bobs_next = logged_in(bob).get(f"{LIST}?limit=1").json()["next"]

    # When: Alice uses it
    body = logged_in(alice).get(f"{LIST}?limit=100&cursor={bobs_next}").json()

    # Then: Alice's own notifications only
    ids = [r["id"] for r in body["results"]]
    assert ids
    assert set(ids) <= set(inbox_ids(alice))


@pytest.mark.parametrize("position", [1, 10**12, cursor.MAX_ID])
def test_a_cursor_for_any_position_shows_only_ones_own(users, position):
    alice, _ = users
    crafted = cursor.encode(position)
    ids = [r["id"] for r in logged_in(alice).get(f"{LIST}?cursor={crafted}").json()["results"]]
    assert set(ids) <= set(inbox_ids(alice))


def test_another_users_notification_answers_404_and_stays_unread(users):
    alice, bob = users
    pk = inbox_ids(bob)[0]
    for name in ("read", "unread_one"):
        response = logged_in(alice).post(reverse(f"offchat_notify_inbox:{name}", args=[pk]))
        assert response.status_code == 404
        assert response.json() == {"error": f"notification {pk} not found"}
    assert Notification.objects.get(pk=pk).read_at is None


@pytest.mark.parametrize("pk", [0, 10**6, cursor.MAX_ID, cursor.MAX_ID + 1, 10**40])
def test_unknown_ids_answer_404(users, pk):
    alice, _ = users
    response = logged_in(alice).post(reverse("offchat_notify_inbox:read", args=[pk]))
    assert response.status_code == 404
    assert response.json() == {"error": f"notification {pk} not found"}


def test_mark_all_read_leaves_other_users_alone(users):
    alice, bob = users
    assert logged_in(alice).post(READ_ALL).json() == {"marked": 10, "unread": 0}
    assert Notification.objects.for_user(bob).unread().count() == 14


def test_counts_are_ones_own(users):
    alice, bob = users
    assert logged_in(alice).get(reverse("offchat_notify_inbox:unread")).json() == {"unread": 10}
    assert logged_in(bob).get(LIST).json()["unread"] == 14


ANONYMOUS = [
    ("get", LIST),
    ("get", reverse("offchat_notify_inbox:unread")),
    ("post", READ_ALL),
    ("post", reverse("offchat_notify_inbox:read", args=[1])),
    ("post", reverse("offchat_notify_inbox:unread_one", args=[1])),
    ("post", LIST),  # a wrong method too: 401 first, nothing about the URL
    ("get", READ_ALL),
]


@pytest.mark.parametrize(("method", "url"), ANONYMOUS)
def test_anonymous_requests_get_401_in_json_never_a_redirect(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}
    assert "Location" not in response


@pytest.mark.parametrize("name", ["read_all", "read"])
def test_posts_need_the_csrf_token(users, name):
    # Given
    alice, _ = users
    args = [inbox_ids(alice)[0]] if name == "read" else []
    url = reverse(f"offchat_notify_inbox:{name}", args=args)
    client = logged_in(alice, enforce_csrf_checks=True)

    # Then: refused without the token, changing nothing
    assert client.post(url).status_code == 403
    assert Notification.objects.for_user(alice).unread().count() == 10

    # When: with the token, as a page of the site sends it
    token = "a" * 32
    client.cookies["csrftoken"] = token
    response = client.post(url, headers={"X-CSRFToken": token})

    # Then
    assert response.status_code == 200
    assert Notification.objects.for_user(alice).unread().count() < 10


def test_a_forged_csrf_token_is_refused(users):
    alice, _ = users
    client = logged_in(alice, enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32
    assert client.post(READ_ALL, headers={"X-CSRFToken": "b" * 32}).status_code == 403


BAD_QUERIES = [
    ("limit=0", "limit must be a whole number from 1 to 100, not '0'"),
    ("limit=101", "limit must be a whole number from 1 to 100, not '101'"),
    ("limit=-1", "limit must be a whole number"),
    ("limit=abc", "limit must be a whole number"),
    ("limit=1e3", "limit must be a whole number"),
    ("limit=%EF%BC%91", "limit must be a whole number"),  # a full-width digit one
    ("limit=" + "9" * 40, "limit must be a whole number"),
    ("limit=", "limit must be a whole number"),
    ("cursor=abc", "cursor is not valid"),
    ("cursor=123", "cursor is not valid"),
    ("cursor=123:forged", "cursor is not valid"),
    ("cursor=%00%FF", "cursor is not valid"),
    ("cursor=" + "x" * 5000, "cursor is not valid"),
    ("unread=maybe", "unread must be 1 or 0 (true or false), not 'maybe'"),
    ("unread=2", "unread must be 1 or 0"),
    ("&".join(f"verb=v{n}" for n in range(21)), "at most 20 verb values may be given, not 21"),
    ("verb=" + "v" * 256, "verb must be at most 255 characters, not 256"),
]


@pytest.mark.parametrize(("query", "message"), BAD_QUERIES)
def test_malformed_parameters_get_400_with_a_message(users, query, message):
    alice, _ = users
    response = logged_in(alice).get(f"{LIST}?{query}")
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


@pytest.mark.parametrize("value", ["0", "-1", "18446744073709551616", "1.5", " 7", "abc"])
def test_signed_cursors_that_hold_no_valid_id_get_400(users, value):
    alice, _ = users
    forged = signing.Signer(salt="offchat_notify.inbox.cursor").sign(value)
    response = logged_in(alice).get(LIST, {"cursor": forged})
    assert response.status_code == 400
    assert "cursor is not valid" in response.json()["error"]
