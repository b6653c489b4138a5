"""DISPATCH = "background": the broker send leaves the committing thread."""

from __future__ import annotations

import logging
import multiprocessing
import subprocess
import sys
import textwrap
import threading

import pytest
from django.db import transaction
from django.test import override_settings
from dramatiq.brokers.stub import StubBroker

from offchat_notify import notify_admins
from offchat_notify.backends.dramatiq.sender import BackgroundSender, flush
from offchat_notify.checks import check_settings
from offchat_notify.models import Event, Notification
from tests.helpers import broker_middleware

pytestmark = pytest.mark.django_db(transaction=True)

BACKGROUND = {"BACKEND": "dramatiq", "OPTIONS": {"DISPATCH": "background"}}


@pytest.fixture
def stub(use_broker):
    return use_broker(StubBroker(middleware=broker_middleware()))


def queued_ids(broker) -> list[int]:
    from dramatiq import Message

    from offchat_notify.tasks import deliver_event

    queue = broker.queues[deliver_event.queue_name].queue
    return [Message.decode(data).args[0] for data in queue]


@override_settings(OFFCHAT_NOTIFY=BACKGROUND)
def test_the_commit_returns_while_the_send_is_still_waiting_on_the_broker(make_users, stub):
    make_users(2, group="admin")
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()
    enqueue = stub.enqueue

    def slow_enqueue(message, *, delay=None):
        entered.set()
        release.wait(10)
        result = enqueue(message, delay=delay)
        finished.set()
        return result

    stub.enqueue = slow_enqueue
    with transaction.atomic():
        event = notify_admins("x")
    # Inline, the commit would only return after the broker answered (released).
    assert entered.wait(10) and not finished.is_set()
    assert queued_ids(stub) == []
    release.set()
    assert flush(10)
    assert queued_ids(stub) == [event.pk]
    assert Event.objects.get(pk=event.pk).state == Event.State.PENDING


@override_settings(OFFCHAT_NOTIFY=BACKGROUND)
def test_nothing_is_sent_for_a_transaction_that_rolls_back(make_users, stub):
    make_users(1, group="admin")
    with pytest.raises(RuntimeError), transaction.atomic():
        notify_admins("x")
        raise RuntimeError("the view failed")
    assert flush(10)
    assert queued_ids(stub) == []
    assert not Event.objects.exists()


@override_settings(OFFCHAT_NOTIFY=BACKGROUND)
def test_a_broker_error_in_the_thread_leaves_the_event_for_the_relay(make_users, stub, caplog):
    make_users(1, group="admin")
    calls = []
    enqueue = stub.enqueue

    def flaky(message, *, delay=None):
        calls.append(message.args[0])
        if len(calls) == 1:
            raise ConnectionError("broker down")
        return enqueue(message, delay=delay)

    stub.enqueue = flaky
    with caplog.at_level(logging.WARNING):
        first = notify_admins("x")
        assert flush(10)
        second = notify_admins("y")  # the thread survived the error
        assert flush(10)
    assert calls == [first.pk, second.pk]
    assert queued_ids(stub) == [second.pk]
    assert f"event {first.pk} stays pending for the relay" in caplog.text
    assert Event.objects.get(pk=first.pk).state == Event.State.PENDING


@override_settings(
    OFFCHAT_NOTIFY={
        "BACKEND": "dramatiq",
        "OPTIONS": {"DISPATCH": "background", "ON_BROKER_ERROR": "sync"},
    }
)
def test_the_sync_policy_delivers_from_the_sender_thread(make_users, stub):
    admins = make_users(3, group="admin")

    def down(message, *, delay=None):
        raise ConnectionError("broker down")

    stub.enqueue = down
    event = notify_admins("x")
    assert flush(10)
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED
    recipients = Notification.objects.filter(event=event).values_list("recipient_id", flat=True)
    assert sorted(recipients) == [u.pk for u in admins]


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ({"DISPATCH": "later"}, "must be one of 'inline', 'background', not 'later'"),
        (
            {"DISPATCH": "background", "ON_BROKER_ERROR": "raise"},
            "'background' cannot be combined with ON_BROKER_ERROR 'raise'",
        ),
    ],
)
def test_bad_dispatch_settings_are_check_errors(notify, message):
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "OPTIONS": notify}):
        errors = check_settings()
    assert [e.id for e in errors] == ["offchat_notify.E003"]
    assert message in errors[0].msg


def _send_after_fork(path: str, result) -> None:
    from pathlib import Path

    from offchat_notify.backends.dramatiq.sender import sender

    sender.submit(lambda event_id: Path(path).write_text(str(event_id)), 7)
    result.put(sender.flush(10))


# Forking a process that runs threads is the very case under test (a web
# server's pre-fork model); Python 3.12+ warns about it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_sends_with_a_thread_of_its_own(tmp_path):
    from offchat_notify.backends.dramatiq.sender import sender

    sender.submit(lambda event_id: None, 1)  # the parent's thread is running
    assert sender.flush(10)
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    child = context.Process(target=_send_after_fork, args=(str(tmp_path / "sent"), result))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert result.get(timeout=5) is True
    assert (tmp_path / "sent").read_text() == "7"


def test_a_full_queue_leaves_the_event_for_the_relay(caplog):
    gate = threading.Event()
    sender = BackgroundSender(maxsize=1)
    with caplog.at_level(logging.WARNING):
        sender.submit(lambda event_id: gate.wait(10), 1)  # taken by the thread, blocks
        assert not sender.flush(0.05)
        sender.submit(lambda event_id: None, 2)  # fills the queue
        sender.submit(lambda event_id: None, 3)  # one too many
    assert "event 3 stays pending for the relay" in caplog.text
    gate.set()
    assert sender.flush(10)


def test_a_normal_exit_waits_for_the_queued_sends(tmp_path):
    sent = tmp_path / "sent"
    script = textwrap.dedent(
        f"""
        import time
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "offchat_notify"]
        )
        django.setup()
        from offchat_notify.backends.dramatiq.sender import sender

        def slow(event_id):
            time.sleep(0.5)
            open({str(sent)!r}, "w").write(str(event_id))

        sender.submit(slow, 42)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert sent.read_text() == "42"
