"""The inbox JSON API: pages, filters, counts, marking read, and what each costs."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import override_settings
from django.urls import reverse

from offchat_notify.inbox import cursor
from offchat_notify.models import Notification
from tests.testapp.models import Message

from .inbox_rows import deliver, inbox_ids

pytestmark = pytest.mark.django_db

LIST = reverse("offchat_notify_inbox:list")
UNREAD = reverse("offchat_notify_inbox:unread")
READ_ALL = reverse("offchat_notify_inbox:read_all")
NO_STORE = ("no-cache", "no-store", "must-revalidate", "private")


def read_url(pk: int) -> str:
    return reverse("offchat_notify_inbox:read", args=[pk])


@pytest.fixture
def alice(make_users):
    user = make_users(1, first_name="Alice", last_name="Liddell")[0]
    return user


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_urls_have_the_contract_names_and_paths():
    assert LIST == "/notifications/"
    assert UNREAD == "/notifications/unread/"
    assert READ_ALL == "/notifications/read/"
    assert read_url(7) == "/notifications/7/read/"
    assert reverse("offchat_notify_inbox:unread_one", args=[7]) == "/notifications/7/unread/"
    assert reverse("offchat_notify_inbox:stream") == "/notifications/stream/"


def test_list_answers_the_newest_first_with_items_and_the_unread_count(alice_client, alice):
    # Given
    sender = Message.objects.create(sender=alice, text="hi").sender
    deliver([alice], verb="first")
    last = deliver([alice], verb="second", title="T", body="B", level="warning", actor=sender,
                   data={"room": 3}, target=Message.objects.get())  # fmt: skip
    Notification.objects.filter(event__verb="first").mark_read()

    # When
    response = alice_client.get(LIST)

    # Then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert [r["verb"] for r in body["results"]] == ["second", "first"]
    assert body["next"] is None
    assert body["unread"] == 1
    newest = body["results"][0]
    assert newest == {
        "id": Notification.objects.get(event=last).pk,
        "verb": "second",
        "title": "T",
        "body": "B",
        "level": "warning",
        "data": {"room": 3},
        "actor": "Alice Liddell",
        "target_url": None,  # a Message has no get_absolute_url
        "created_at": newest["created_at"],
        "read_at": None,
    }
    assert body["results"][1]["read_at"] is not None


def test_cursor_pages_walk_the_whole_inbox_once_each(alice_client, alice):
    # Given
    for n in range(7):
        deliver([alice], verb=f"v{n}")

    # When
    seen, pages, url = [], 0, f"{LIST}?limit=3"
    while url:
        body = alice_client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        pages += 1
        url = f"{LIST}?limit=3&cursor={body['next']}" if body["next"] else None

    # Then
    assert seen == inbox_ids(alice)
    assert pages == 3


def test_a_page_that_ends_the_inbox_exactly_has_no_next(alice_client, alice):
    for _ in range(3):
        deliver([alice])
    assert alice_client.get(f"{LIST}?limit=3").json()["next"] is None
    assert alice_client.get(f"{LIST}?limit=2").json()["next"] is not None


def test_limit_defaults_to_20(alice_client, alice):
    for _ in range(cursor.DEFAULT_LIMIT + 1):
        deliver([alice])
    assert len(alice_client.get(LIST).json()["results"]) == cursor.DEFAULT_LIMIT
    assert len(alice_client.get(f"{LIST}?limit=100").json()["results"]) == 21


def test_unread_filter_and_verb_filters(alice_client, alice):
    # Given
    deliver([alice], verb="a")
    deliver([alice], verb="b")
    deliver([alice], verb="c")
    Notification.objects.filter(event__verb="b").mark_read()

    def verbs(query: str) -> list[str]:
        return [r["verb"] for r in alice_client.get(f"{LIST}?{query}").json()["results"]]

    # Then
    assert verbs("unread=1") == ["c", "a"]
    assert verbs("unread=0") == ["c", "b", "a"]
    assert verbs("verb=b") == ["b"]
    assert verbs("verb=a&verb=c") == ["c", "a"]
    assert verbs("verb=b&unread=true") == []
    assert verbs("verb=") == ["c", "b", "a"]


def test_filters_apply_to_later_pages_too(alice_client, alice):
    for n in range(6):
        deliver([alice], verb="even" if n % 2 == 0 else "odd")
    first = alice_client.get(f"{LIST}?verb=even&limit=2").json()
    second = alice_client.get(f"{LIST}?verb=even&limit=2&cursor={first['next']}").json()
    assert [r["verb"] for r in first["results"] + second["results"]] == ["even"] * 3
    assert second["next"] is None


def test_unread_answers_the_count(alice_client, alice):
    deliver([alice])
    deliver([alice])
    assert alice_client.get(UNREAD).json() == {"unread": 2}


def test_mark_read_answers_the_item_and_the_new_count(alice_client, alice):
    # Given
    deliver([alice])
    deliver([alice], verb="older")
    pk = inbox_ids(alice)[0]

    # When
    response = alice_client.post(read_url(pk))

    # Then
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == pk
    assert body["read_at"] is not None
    assert body["unread"] == 1
    assert Notification.objects.get(pk=pk).read_at is not None
    again = alice_client.post(read_url(pk)).json()
    assert again["read_at"] == body["read_at"]  # unchanged
    assert again["unread"] == 1


def test_mark_unread_makes_it_unread_again(alice_client, alice):
    deliver([alice])
    pk = inbox_ids(alice)[0]
    alice_client.post(read_url(pk))
    body = alice_client.post(reverse("offchat_notify_inbox:unread_one", args=[pk])).json()
    assert body["read_at"] is None
    assert body["unread"] == 1
    assert Notification.objects.get(pk=pk).read_at is None


def test_mark_all_read_answers_how_many_changed(alice_client, alice):
    for _ in range(3):
        deliver([alice])
    alice_client.post(read_url(inbox_ids(alice)[0]))
    assert alice_client.post(READ_ALL).json() == {"marked": 2, "unread": 0}
    assert alice_client.post(READ_ALL).json() == {"marked": 0, "unread": 0}


@pytest.mark.parametrize(
    ("url", "method", "allowed"),
    [
        (LIST, "post", "GET"),
        (UNREAD, "delete", "GET"),
        (READ_ALL, "get", "POST"),
        ("/notifications/1/read/", "get", "POST"),
        ("/notifications/1/unread/", "put", "POST"),
    ],
)
def test_other_methods_get_405_in_json(alice_client, url, method, allowed):
    response = getattr(alice_client, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json() == {
        "error": f"method {method.upper()} is not allowed here; use {allowed}"
    }


@pytest.mark.parametrize("url", [LIST, f"{LIST}?limit=x", UNREAD])
def test_answers_are_never_cached(alice_client, url):
    cache_control = alice_client.get(url)["Cache-Control"]
    assert all(part in cache_control for part in NO_STORE)


def test_anonymous_answers_are_never_cached(client):
    cache_control = client.get(LIST)["Cache-Control"]
    assert all(part in cache_control for part in NO_STORE)


@pytest.mark.parametrize("size", [3, 40])
def test_a_page_costs_the_same_queries_whatever_its_size(
    alice_client, alice, make_users, django_assert_num_queries, size
):
    # Given: items with actors and targets of two models
    bob = make_users(1)[0]
    message = Message.objects.create(sender=bob, text="hi")
    for n in range(size):
        deliver([alice], actor=bob, target=message if n % 2 else bob)
    alice_client.get(LIST)  # content types cached, as in a warm process

    # Then: session, user, page, one per target model, unread count
    with django_assert_num_queries(6):
        body = alice_client.get(f"{LIST}?limit=100").json()
    assert len(body["results"]) == size
    later = cursor.encode(body["results"][0]["id"])  # a later page costs the same
    with django_assert_num_queries(6):
        assert alice_client.get(f"{LIST}?limit=2&cursor={later}").status_code == 200


def test_unread_costs_one_query_after_the_session(alice_client, alice, django_assert_num_queries):
    deliver([alice])
    with django_assert_num_queries(3):  # session, user, count
        alice_client.get(UNREAD)


def test_cursor_round_trips_and_is_signed():
    token = cursor.encode(1234)
    assert cursor.decode(token) == 1234
    with override_settings(SECRET_KEY="another key"), pytest.raises(cursor.BadParameter):
        cursor.decode(token)


def test_cursor_survives_a_key_rotation_with_the_old_key_as_a_fallback():
    token = cursor.encode(99)
    with override_settings(SECRET_KEY="new key", SECRET_KEY_FALLBACKS=["offchat-notify-tests"]):
        assert cursor.decode(token) == 99


def test_a_signed_value_that_is_not_an_id_is_refused():
    bad = signing.Signer(salt="offchat_notify.inbox.cursor").sign("-5")
    with pytest.raises(cursor.BadParameter, match="cursor is not valid"):
        cursor.decode(bad)


def test_csrf_failure_view_answers_json_for_inbox_urls_only(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    with override_settings(CSRF_FAILURE_VIEW="offchat_notify.inbox.http.csrf_failure"):
        inbox = client.post(READ_ALL)
        other = client.post(reverse("admin:login"))
    assert inbox.status_code == 403
    assert inbox.json()["error"].startswith("CSRF verification failed: CSRF cookie not set.")
    assert other.status_code == 403
    assert other["Content-Type"].startswith("text/html")


def test_the_views_answer_under_asgi_too(alice):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    # Given
    deliver([alice])
    pk = inbox_ids(alice)[0]
    client = AsyncClient(enforce_csrf_checks=True)

    async def session() -> tuple:
        await client.aforce_login(alice)
        listed = await client.get(LIST)
        client.cookies["csrftoken"] = "c" * 32
        marked = await client.post(read_url(pk), headers={"X-CSRFToken": "c" * 32})
        return listed, marked

    # When
    listed, marked = async_to_sync(session)()

    # Then
    assert [r["id"] for r in listed.json()["results"]] == [pk]
    assert marked.json()["unread"] == 0
