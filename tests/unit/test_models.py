"""The inbox side: Notification queryset helpers and the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from offchat_notify import Audience
from offchat_notify.delivery import deliver
from offchat_notify.models import Event, Notification

pytestmark = pytest.mark.django_db


def delivered(users, verb="x") -> Event:
    event = Event.objects.create(verb=verb, audience=Audience.users(users).spec)
    return deliver(event.pk)


def test_the_fast_event_insert_writes_what_save_writes(make_users):
    from django.forms.models import model_to_dict

    from tests.testapp.models import Document

    (alice,) = make_users(1)
    fields = {
        "verb": "document.shared",
        "title": "t",
        "body": "b",
        "level": "warning",
        "data": {"n": [1, "2", None], "ok": True},
        "actor": alice,
        "target": Document.objects.create(title="d"),
        "audience": Audience.users([alice]).spec,
        "key": "k-1",
    }
    fast = Event.objects.insert(Event(**fields))
    slow = Event(**{**fields, "key": "k-2"})
    slow.save()
    fast, slow = Event.objects.get(pk=fast.pk), Event.objects.get(pk=slow.pk)
    ignore = {"id", "key", "created_at", "updated_at"}
    assert {k: v for k, v in model_to_dict(fast).items() if k not in ignore} == {
        k: v for k, v in model_to_dict(slow).items() if k not in ignore
    }
    assert fast.target == slow.target
    assert fast.created_at is not None and fast.updated_at is not None
    assert fast.state == Event.State.PENDING


def test_inbox_helpers(make_users):
    alice, bob = make_users(2)
    first = delivered([alice, bob], "first")
    delivered([alice], "second")
    inbox = Notification.objects.for_user(alice)
    assert [n.event.verb for n in inbox.with_event()] == ["second", "first"]
    assert inbox.unread().count() == 2
    assert inbox.filter(event=first).mark_read() == 1
    assert inbox.unread().count() == 1
    assert inbox.read().count() == 1
    assert Notification.objects.for_user(bob).unread().count() == 1  # bob's copy untouched
    assert inbox.mark_read() == 1
    assert inbox.mark_read() == 0
    assert inbox.mark_unread() == 2


def test_an_inbox_page_costs_the_same_queries_for_many_rows(make_users, django_assert_num_queries):
    from tests.testapp.models import Document, Room

    (alice,) = make_users(1)
    for i in range(5):
        target = Room.objects.create(name=f"r{i}") if i % 2 else Document.objects.create(title="d")
        event = Event.objects.create(
            verb="x", audience=Audience.users([alice]).spec, actor=alice, target=target
        )
        deliver(event.pk)
    with django_assert_num_queries(3):  # notifications with events and actors; 2 target types
        page = list(Notification.objects.for_user(alice).with_event())
        assert all(n.event.target is not None and n.event.actor == alice for n in page)


def test_mark_read_on_one_notification(make_users):
    (alice,) = make_users(1)
    delivered([alice])
    note = Notification.objects.get()
    assert not note.is_read
    note.mark_read()
    note.refresh_from_db()
    assert note.is_read


def test_created_at_is_set_by_the_database(make_users):
    (alice,) = make_users(1)
    delivered([alice])
    assert Notification.objects.get().created_at is not None


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_lists_events_and_notifications(admin_client, make_users):
    delivered(make_users(2), "message.sent")
    for name in ("event", "notification"):
        response = admin_client.get(reverse(f"admin:offchat_notify_{name}_changelist"))
        assert response.status_code == 200
        assert b"message.sent" in response.content
    response = admin_client.get(
        reverse("admin:offchat_notify_event_changelist"), {"state__exact": "delivered"}
    )
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_admin_retry_action_delivers_failed_events_once(admin_client, make_users):
    users = make_users(3)
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)
    Notification.objects.create(event=event, recipient=users[0])
    Event.objects.filter(pk=event.pk).update(state=Event.State.FAILED, last_error="boom")
    response = admin_client.post(
        reverse("admin:offchat_notify_event_changelist"),
        {"action": "retry_delivery", "_selected_action": [event.pk]},
        follow=True,
    )
    assert b"1 event sent for delivery again." in response.content
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED
    assert Notification.objects.filter(event=event).count() == 3


def test_admin_mark_read_action(admin_client, make_users):
    delivered(make_users(2))
    admin_client.post(
        reverse("admin:offchat_notify_notification_changelist"),
        {
            "action": "mark_read",
            "_selected_action": list(Notification.objects.values_list("pk", flat=True)),
        },
    )
    assert Notification.objects.unread().count() == 0
