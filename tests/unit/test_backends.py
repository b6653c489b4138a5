"""Backends: loading, and what sync, eager and dramatiq do with an Event."""

from __future__ import annotations

import dramatiq
import pytest
from django.db import transaction
from django.test import override_settings
from dramatiq.brokers.stub import StubBroker

from offchat_notify import InvalidNotifierBackend, PermanentDeliveryError, notify_admins
from offchat_notify.backends import get_backend, load_backend
from offchat_notify.backends.base import BaseBackend
from offchat_notify.backends.dramatiq.sender import flush
from offchat_notify.exceptions import PoisonMessage
from offchat_notify.models import Event, Notification
from offchat_notify.tasks import deliver_event, should_retry
from tests.helpers import broker_middleware

pytestmark = pytest.mark.django_db(transaction=True)

DISPATCHED: list[int] = []


class RecordingBackend(BaseBackend):
    """A third-party backend: records ids, delivers nothing."""

    def enqueue(self, job: str, *args: object) -> None:
        DISPATCHED.append(args[0])


class NotABackend:
    pass


def test_load_backend_refuses_what_does_not_import():
    with pytest.raises(InvalidNotifierBackend, match="could not import 'nowhere.Backend'"):
        load_backend("nowhere.Backend")


def test_load_backend_refuses_what_is_not_a_backend():
    with pytest.raises(InvalidNotifierBackend, match="is not a subclass of"):
        load_backend(f"{__name__}.NotABackend")


def test_the_base_backend_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        BaseBackend()  # type: ignore[abstract]


def test_a_dotted_path_backend_receives_the_event_id_after_commit(make_users):
    make_users(2, group="admin")
    DISPATCHED.clear()
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": f"{__name__}.RecordingBackend"}):
        with transaction.atomic():
            event = notify_admins("x")
            assert DISPATCHED == []
        assert [event.pk] == DISPATCHED
    assert not Notification.objects.exists()


def corrupt_audience_before_commit() -> Event:
    """notify, then break the stored audience so delivery will fail."""
    with transaction.atomic():
        event = notify_admins("x")
        Event.objects.filter(pk=event.pk).update(audience={"bogus": 1})
    return event


def test_sync_records_a_failed_delivery_without_breaking_the_caller(make_users):
    make_users(2, group="admin")
    event = corrupt_audience_before_commit()
    event.refresh_from_db()
    assert event.state == Event.State.FAILED
    assert "Malformed audience spec" in event.last_error
    assert event.attempts == 1


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "eager"})
def test_eager_delivers_before_notify_returns(make_users):
    admins = make_users(3, group="admin")
    event = notify_admins("x")
    assert sorted(Notification.objects.filter(event=event).values_list("recipient", flat=True)) == [
        u.pk for u in admins
    ]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "eager"})
def test_eager_propagates_delivery_errors_like_a_test_wants(make_users):
    make_users(1, group="admin")
    with pytest.raises(PermanentDeliveryError, match="Malformed audience spec"):
        corrupt_audience_before_commit()


class PickyEncoder(dramatiq.encoder.JSONEncoder):
    """Fails like a broker would on what JSON cannot carry."""

    def encode(self, data):
        assert data["args"] and all(type(a) is int for a in data["args"]), data
        return super().encode(data)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "eager"})
def test_eager_round_trips_the_arguments_through_the_broker_encoder(make_users):
    make_users(1, group="admin")
    previous = dramatiq.get_encoder()
    dramatiq.set_encoder(PickyEncoder())
    try:
        event = notify_admins("x")
    finally:
        dramatiq.set_encoder(previous)
    assert Notification.objects.filter(event=event).count() == 1


@pytest.fixture
def stub_broker(use_broker):
    broker = StubBroker(middleware=broker_middleware())
    broker.emit_after("process_boot")
    return use_broker(broker)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"})
def test_dramatiq_sends_only_the_event_id(make_users, stub_broker):
    admins = make_users(3, group="admin")
    event = notify_admins("x", title="secret title", data={"email": "a@example.com"})
    assert flush(timeout=5)  # DISPATCH "background", the default: the send is in a thread
    (message,) = stub_broker.queues["offchat_notify"].queue
    decoded = dramatiq.get_encoder().decode(message)
    assert decoded["args"] == [event.pk]
    assert decoded["kwargs"] == {}
    assert decoded["actor_name"] == "offchat_notify.deliver_event"
    assert b"secret" not in message and b"example.com" not in message
    # A worker then delivers it.
    worker = dramatiq.Worker(stub_broker, worker_timeout=100)
    worker.start()
    try:
        stub_broker.join("offchat_notify", fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert Notification.objects.filter(event=event).count() == len(admins)
    assert Event.objects.get(pk=event.pk).state == Event.State.DELIVERED


class DownBroker(StubBroker):
    def enqueue(self, message, *, delay=None):
        raise ConnectionError("broker is down")


@pytest.fixture
def down_broker():
    broker = DownBroker()
    previous = deliver_event.broker
    broker.declare_actor(deliver_event)
    deliver_event.broker = broker
    yield broker
    deliver_event.broker = previous


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "OPTIONS": {"ON_BROKER_ERROR": "defer"}})
def test_broker_down_defer_keeps_the_event_pending(make_users, down_broker, caplog):
    make_users(2, group="admin")
    event = notify_admins("x")
    assert flush(timeout=5)
    event.refresh_from_db()
    assert event.state == Event.State.PENDING
    assert not Notification.objects.exists()
    assert "stays pending for the relay" in caplog.text


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "OPTIONS": {"ON_BROKER_ERROR": "sync"}})
def test_broker_down_sync_delivers_inline(make_users, down_broker):
    make_users(2, group="admin")
    event = notify_admins("x")
    assert flush(timeout=5)  # the sender thread met the broker error and delivered
    assert Notification.objects.filter(event=event).count() == 2


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "OPTIONS": {"ON_BROKER_ERROR": "raise"}})
def test_broker_down_raise_reaches_the_caller(make_users, down_broker):
    make_users(2, group="admin")
    with pytest.raises(ConnectionError, match="broker is down"):
        notify_admins("x")


def test_get_backend_is_cached_per_settings():
    assert get_backend() is get_backend()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("12",), {}),
        ((1.0,), {}),
        ((None,), {}),
        ((True,), {}),
        ((), {}),
        ((1, 2), {}),
        ((), {"id": 1}),
    ],
    ids=["str", "float", "none", "bool", "no-args", "two-args", "kwargs"],
)
def test_the_actor_rejects_messages_that_are_not_one_event_id(args, kwargs, caplog):
    with pytest.raises(PoisonMessage, match="Not a deliver job"):
        deliver_event.fn(*args, **kwargs)
    assert "takes one Event id (int)" in caplog.text
    assert not should_retry(0, PoisonMessage("x"))


def test_transient_failures_are_retried_at_most_max_attempts_times_per_message():
    from offchat_notify import TransientDeliveryError

    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "MAX_ATTEMPTS": 3}):
        assert [should_retry(n, TransientDeliveryError("x")) for n in range(4)] == [
            True,
            True,
            True,
            False,
        ]


def test_a_message_for_an_event_the_database_does_not_hold_is_rejected(caplog):
    with pytest.raises(PoisonMessage, match="No Event with id 987654321"):
        deliver_event.fn(987654321)
    assert "No Event 987654321 in the database; rejecting the message." in caplog.text
