"""The signal registry: rules wired to host models without signal handlers."""

from __future__ import annotations

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.dispatch import Signal
from django.test import override_settings

from offchat_notify import AlreadyRegistered, Audience, NotRegistered, RegistrationError, registry
from offchat_notify.checks import check_rules
from offchat_notify.models import Event, Notification
from offchat_notify.registry import Notice, NotificationRegistry
from tests.testapp.models import Announcement, Message, Room

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rules():
    """A private registry, emptied (and its signals disconnected) after the test."""
    private = NotificationRegistry()
    yield private
    private.clear()


def admins_notice(message) -> Notice:
    return Notice(
        audience=Audience.role("admin").exclude(message.sender_id),
        verb="message.sent",
        title=f"New message from {message.sender}",
        actor=message.sender,
        target=message,
    )


def test_the_public_registry_is_the_module_with_the_verbs():
    assert registry.Notice is Notice
    assert registry.on_create.__self__ is registry.default


def test_autodiscovered_rules_from_a_host_notifications_module(make_users):
    # tests/testapp/notifications.py registers this rule, as a host project would.
    (rule,) = [r for r in registry.get_rules() if r.model == "testapp.Announcement"]
    assert (rule.event, rule.name) == ("create", "tests.testapp.notifications.announcement_made")
    staff = make_users(3, is_staff=True)
    make_users(2)
    announcement = Announcement.objects.create(text="Maintenance at noon")
    event = Event.objects.get(verb="announcement.made")
    assert event.title == "Maintenance at noon"
    assert event.target == announcement
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == [
        u.pk for u in staff
    ]


def test_on_create_notifies_and_on_update_does_not(rules, make_users):
    sender, *admins = make_users(4, group="admin")
    rules.on_create("testapp.Message")(admins_notice)
    message = Message.objects.create(sender=sender, text="hi")
    event = Event.objects.get()
    assert event.target == message and event.actor == sender
    assert Notification.objects.filter(event=event).count() == 3
    message.text = "edited"
    message.save()
    assert Event.objects.count() == 1


def test_on_update_and_on_delete(rules, make_users):
    (user,) = make_users(1, group="admin")
    rules.on_update(Room)(lambda room: Notice(audience=Audience.users([user]), verb="room.renamed"))
    rules.on_delete(Room)(lambda room: Notice(audience=Audience.users([user]), verb="room.deleted"))
    room = Room.objects.create(name="a")
    assert not Event.objects.exists()
    room.name = "b"
    room.save()
    room.delete()
    assert list(Event.objects.order_by("id").values_list("verb", flat=True)) == [
        "room.renamed",
        "room.deleted",
    ]


def test_a_rule_returning_none_skips(rules, make_users):
    (sender,) = make_users(1)
    rules.on_create(Message)(lambda m: None if m.text.startswith("quiet") else admins_notice(m))
    Message.objects.create(sender=sender, text="quiet please")
    assert not Event.objects.exists()


def test_on_signal_with_a_sender(rules, make_users):
    users = make_users(2)
    payment_failed = Signal()
    rules.on_signal(payment_failed, sender=Room)(
        lambda sender, amount: Notice(
            audience=Audience.users(users), verb="payment.failed", data={"amount": amount}
        )
    )
    payment_failed.send(sender=Message, amount=1)  # another sender: ignored
    payment_failed.send(sender=Room, amount=5)
    event = Event.objects.get()
    assert (event.verb, event.data) == ("payment.failed", {"amount": 5})


def test_raw_saves_from_fixtures_are_skipped(rules, make_users, tmp_path):
    (sender,) = make_users(1, group="admin")
    rules.on_create(Message)(admins_notice)
    fixture = tmp_path / "messages.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "testapp.message",
                    "pk": 90,
                    "fields": {
                        "sender": sender.pk,
                        "text": "x",
                        "created_at": "2026-01-01T00:00:00Z",
                    },
                }
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert Message.objects.filter(pk=90).exists()
    assert not Event.objects.exists()


def test_a_failing_rule_is_logged_and_never_breaks_the_host_save(rules, make_users, caplog):
    (sender,) = make_users(1, group="admin")

    def broken(message):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")  # poisons a PostgreSQL transaction

    rules.on_create(Message)(broken)
    with caplog.at_level(logging.ERROR, logger="offchat_notify.registry"), transaction.atomic():
        Message.objects.create(sender=sender, text="one")
        Message.objects.create(sender=sender, text="two")  # the transaction is still usable
    assert Message.objects.count() == 2
    assert not Event.objects.exists()
    assert f"Notification rule {__name__}.{broken.__qualname__} failed" in caplog.text


def test_a_rule_returning_something_else_is_an_error_naming_the_rule(rules, make_users, caplog):
    (sender,) = make_users(1)
    rules.on_create(Message)(lambda m: {"verb": "x"})
    Message.objects.create(sender=sender, text="x")
    assert "returned {'verb': 'x'}; return a registry.Notice or None" in caplog.text


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "RAISE_RULE_ERRORS": True})
def test_strict_mode_raises_rule_errors_for_tests(rules, make_users):
    (sender,) = make_users(1)
    rules.on_create(Message)(admins_notice)  # there is no admin Group: UnknownRole
    with pytest.raises(Exception, match="Unknown role 'admin'"):
        Message.objects.create(sender=sender, text="x")


def test_the_event_commits_and_dispatches_with_the_host_transaction(rules, make_users):
    sender, admin = make_users(2, group="admin")
    rules.on_create(Message)(admins_notice)
    with transaction.atomic():
        Message.objects.create(sender=sender, text="x")
        assert Event.objects.count() == 1
        assert not Notification.objects.exists()  # dispatch waits for the commit
    assert list(Notification.objects.values_list("recipient_id", flat=True)) == [admin.pk]

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        Message.objects.create(sender=sender, text="y")
        raise Rollback
    assert Event.objects.count() == 1  # the rolled-back message left no Event


def test_duplicate_rules_are_refused_naming_the_first_registration(rules):
    rules.on_create(Message)(admins_notice)
    with pytest.raises(AlreadyRegistered) as raised:
        rules.on_create("testapp.Message")(admins_notice)
    assert f"{__name__}.admins_notice on create of testapp.Message" in str(raised.value)
    assert f"first at {__file__}:" in str(raised.value)


def test_unregister_disconnects(rules, make_users):
    (sender,) = make_users(1, group="admin")
    rules.on_create(Message)(admins_notice)
    rules.unregister(admins_notice)
    Message.objects.create(sender=sender, text="x")
    assert not Event.objects.exists()
    with pytest.raises(NotRegistered):
        rules.unregister(admins_notice)


@pytest.mark.parametrize("model", [None, "Message", "a.b.c", 42])
def test_bad_model_references_are_refused_at_registration(rules, model):
    with pytest.raises(
        RegistrationError, match="expected a model class or an 'app_label.ModelName'"
    ):
        rules.on_create(model)(admins_notice)


def test_a_rule_must_be_callable(rules):
    with pytest.raises(RegistrationError, match="must be callable"):
        rules.on_create(Message)("not a function")


def test_the_check_reports_rules_for_models_that_do_not_exist(rules, monkeypatch):
    monkeypatch.setattr("offchat_notify.registry.default", rules)
    rules.on_create("chat.Mesage")(admins_notice)
    (error,) = check_rules()
    assert error.id == "offchat_notify.E009"
    assert error.msg == (
        f"Notification rule {__name__}.admins_notice is registered for 'chat.Mesage', "
        "which is not an installed model."
    )


def test_notify_rules_lists_the_rules():
    out = StringIO()
    call_command("notify_rules", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["MODEL", "/", "SIGNAL", "EVENT", "RULE", "MODULE"]
    assert lines[1].split() == [
        "testapp.Announcement",
        "create",
        "announcement_made",
        "tests.testapp.notifications",
    ]


def test_notify_rules_names_signals_and_senders(rules, monkeypatch):
    monkeypatch.setattr("offchat_notify.management.commands.notify_rules.registry", rules)
    rules.on_signal(PAYMENT_FAILED, sender=Room)(admins_notice)
    out = StringIO()
    call_command("notify_rules", stdout=out)
    assert out.getvalue().splitlines()[1].split()[:4] == [
        f"{__name__}.PAYMENT_FAILED",
        "from",
        "testapp.Room",
        "signal",
    ]


PAYMENT_FAILED = Signal()


def test_rules_registered_from_an_app_ready_are_connected(rules, make_users, monkeypatch):
    # While AppConfig.ready() methods run, apps.ready is still False.
    from django.apps import apps

    (user,) = make_users(1)
    monkeypatch.setattr(apps, "ready", False)
    rules.on_create(Room)(lambda room: Notice(audience=Audience.users([user]), verb="room.made"))
    monkeypatch.undo()
    Room.objects.create(name="r")
    assert Event.objects.filter(verb="room.made").count() == 1
