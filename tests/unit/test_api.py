"""notify(), notify_admins() and send_bulk_notification(): what the request side does."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import override_settings

from offchat_notify import (
    Audience,
    InvalidNotification,
    UnknownRole,
    notify,
    notify_admins,
    send_bulk_notification,
)
from offchat_notify.models import Event, Notification
from tests.testapp.models import Document, Message, Room

pytestmark = pytest.mark.django_db(transaction=True)


def recipients(event: Event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


def test_notify_admins_delivers_one_row_per_admin(make_users):
    # Given
    admins = make_users(5, group="admin")
    make_users(3)  # not admins
    # When
    event = notify_admins("message.sent", title="Hello")
    # Then
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED
    assert event.recipient_count == 5
    assert recipients(event) == [u.pk for u in admins]


def test_notify_stores_the_payload_actor_and_target(make_users):
    sender, admin = make_users(2)
    Group.objects.create(name="admin").user_set.add(admin)
    message = Message.objects.create(sender=sender, text="hi")
    event = notify(
        Audience.role("admin"),
        "message.sent",
        title="New message",
        body="hi",
        level="success",
        actor=sender,
        target=message,
        data={"room": None, "tags": ["a", 1, 2.5, True]},
    )
    event = Event.objects.get(pk=event.pk)
    assert (event.verb, event.title, event.body, event.level) == (
        "message.sent",
        "New message",
        "hi",
        "success",
    )
    assert event.actor == sender
    assert event.target == message
    assert event.data == {"room": None, "tags": ["a", 1, 2.5, True]}


def test_target_with_a_uuid_primary_key(make_users):
    make_users(1, group="admin")
    document = Document.objects.create(title="spec")
    event = notify_admins("document.shared", target=document)
    assert Event.objects.get(pk=event.pk).target == document


def test_send_bulk_notification_to_user_ids_skips_and_counts_unknown_ids(make_users):
    users = make_users(3)
    missing = users[-1].pk + 1000
    event = send_bulk_notification("digest", user_ids=[users[0].pk, users[2], missing])
    event.refresh_from_db()
    assert recipients(event) == [users[0].pk, users[2].pk]
    assert event.skipped_count == 1
    assert event.state == Event.State.DELIVERED


def test_send_bulk_notification_to_a_role(make_users):
    mods = make_users(2, group="moderator")
    event = send_bulk_notification("flagged", role="moderator")
    assert recipients(event) == [u.pk for u in mods]


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [({}, "got neither"), ({"user_ids": [1], "role": "admin"}, "got both")],
)
def test_send_bulk_notification_takes_exactly_one_of_user_ids_and_role(kwargs, said):
    with pytest.raises(InvalidNotification, match=f"exactly one of user_ids= and role=, {said}"):
        send_bulk_notification("x", **kwargs)
    assert not Event.objects.exists()


def test_inactive_users_receive_nothing(make_users):
    active = make_users(2, group="admin")
    make_users(2, group="admin", is_active=False)
    event = notify_admins("x")
    assert recipients(event) == [u.pk for u in active]


def test_unknown_role_is_an_error_at_the_call_and_writes_nothing():
    with pytest.raises(UnknownRole, match="Unknown role 'auditors' for GroupRoles"):
        notify(Audience.role("auditors"), "x")
    assert not Event.objects.exists()


def test_notify_admins_without_an_admin_group_is_an_unknown_role():
    with pytest.raises(UnknownRole, match="'admin'"):
        notify_admins("x")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"when": datetime.date(2026, 1, 1)}, r"data\['when'\] is a date"),
        ({"a": {"b": [1, uuid.UUID(int=1)]}}, r"data\['a'\]\['b'\]\[1\] is a UUID"),
        ({1: "x"}, "non-string key 1"),
        ({"x": float("nan")}, r"data\['x'\] is nan"),
        (["not", "a", "dict"], "data must be a dict, not list"),
    ],
)
def test_non_json_data_is_refused_naming_the_key(make_users, data, message):
    make_users(1, group="admin")
    with pytest.raises(InvalidNotification, match=message):
        notify_admins("x", data=data)
    assert not Event.objects.exists()


@pytest.mark.parametrize("verb", ["", "   ", None, 3])
def test_empty_verb_is_refused(make_users, verb):
    make_users(1, group="admin")
    with pytest.raises(InvalidNotification, match="verb must be a non-empty string"):
        notify_admins(verb)


def test_a_non_model_target_is_refused(make_users):
    make_users(1, group="admin")
    with pytest.raises(InvalidNotification, match="target must be a saved model instance"):
        notify_admins("x", target="chat.Message:1")
    with pytest.raises(InvalidNotification, match="target must be a saved model instance"):
        notify_admins("x", target=Room(name="unsaved"))
    assert not Event.objects.exists()


def test_an_actor_that_is_not_a_user_is_refused(make_users):
    make_users(1, group="admin")
    room = Room.objects.create(name="r")
    with pytest.raises(InvalidNotification, match="actor must be a saved testapp.User"):
        notify_admins("x", actor=room)


def test_unknown_level_is_refused(make_users):
    make_users(1, group="admin")
    with pytest.raises(InvalidNotification, match="level must be one of debug, info"):
        notify_admins("x", level="urgent")


def test_audience_must_be_an_audience():
    with pytest.raises(InvalidNotification, match="audience must be an Audience"):
        notify([1, 2], "x")


def test_an_idempotency_key_makes_the_second_call_a_no_op(make_users):
    make_users(3, group="admin")
    first = notify_admins("x", key="message-1")
    second = notify_admins("x", title="changed", key="message-1")
    assert second.pk == first.pk
    assert Event.objects.count() == 1
    assert Notification.objects.count() == 3


def test_nothing_is_dispatched_for_a_transaction_that_rolls_back(make_users):
    make_users(3, group="admin")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        notify_admins("x")
        raise Boom
    assert not Event.objects.exists()
    assert not Notification.objects.exists()


def test_dispatch_waits_for_the_commit(make_users):
    make_users(3, group="admin")
    with transaction.atomic():
        event = notify_admins("x")
        assert not Notification.objects.filter(event=event).exists()
    assert Notification.objects.filter(event=event).count() == 3


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "ADMIN_ROLE": "staff-admins"})
def test_admin_role_setting(make_users):
    admins = make_users(2, group="staff-admins")
    make_users(2, group="admin")
    assert recipients(notify_admins("x")) == [u.pk for u in admins]


def test_notify_admins_can_leave_out_the_sender(make_users):
    sender, *others = make_users(4, group="admin")
    assert recipients(notify_admins("message.sent", exclude=sender)) == [u.pk for u in others]
