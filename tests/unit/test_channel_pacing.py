"""A channel job's heartbeat: a slow batch keeps its rows, a dead job loses them
after ``STUCK_AFTER``, and what was sent is marked as it goes."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, ClassVar

import django
import pytest
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from offchat_notify import Audience, notify
from offchat_notify.channels import deliver as channel_jobs
from offchat_notify.channels import email, sends
from offchat_notify.models import ChannelSend
from offchat_notify.relay import relay_channels
from tests.email_backends import CountingBackend

pytestmark = pytest.mark.django_db
SETTINGS = {"BACKEND": "sync", "STUCK_AFTER": 1, "RELAY_AFTER": 0.1, "EMAIL_BATCH_SIZE": 10}


class SlowBackend(CountingBackend):
    """A provider that takes 0.3 s a message; after the 4th, it looks at the
    rows and asks the relay whether the job looks dead, as a relay running
    at that moment would."""

    seen: ClassVar[dict[str, Any]] = {}

    def send_messages(self, messages: Any) -> int:
        time.sleep(0.3)
        sent = super().send_messages(messages)
        if type(self).sent == 4:
            SlowBackend.seen = {
                "marked": ChannelSend.objects.filter(state="sent").count(),
                "relayed": relay_channels(),
            }
        return sent


def use_backend(settings: Any, path: str) -> None:
    if django.VERSION >= (6, 1):  # EMAIL_BACKEND is deprecated there
        settings.MAILERS = {"default": {"BACKEND": path}}
    else:
        settings.EMAIL_BACKEND = path


@pytest.fixture
def pending_event(make_users, settings, django_capture_on_commit_callbacks):
    """An Event whose 6 emails are pending: its first job met a dropped connection."""
    settings.OFFCHAT_NOTIFY = SETTINGS
    settings.DEFAULT_FROM_EMAIL = "noreply@example.com"
    use_backend(settings, "tests.email_backends.CountingBackend")
    users = make_users(6)
    type(users[0]).objects.filter(pk__in=[u.pk for u in users]).update(
        email=Concat(F("username"), Value("@example.com"))
    )
    CountingBackend.reset()
    CountingBackend.drop_after = 0
    with django_capture_on_commit_callbacks(execute=True):
        event = notify(Audience.users(users), "x", channels=["email"])
    CountingBackend.reset()
    assert ChannelSend.objects.filter(state="pending").count() == 6
    return event


def test_a_batch_slower_than_the_lease_keeps_its_rows_and_marks_as_it_goes(pending_event, settings):
    # Given a provider at 0.3 s a message: the batch of 6 lasts 1.8 s, the lease is 1 s
    use_backend(settings, f"{__name__}.SlowBackend")
    SlowBackend.seen = {}
    assert channel_jobs.deliver_channel(pending_event.pk, "email") == 6
    # Then 1.2 s into the batch, the relay saw a live job, not a dead one
    assert SlowBackend.seen["relayed"] == []
    # And what had gone out was already marked sent (the heartbeat, not the batch's end)
    assert 2 <= SlowBackend.seen["marked"] < 6
    assert ChannelSend.objects.filter(state="sent").count() == 6
    assert ChannelSend.objects.filter(attempts=2).count() == 6  # one claim each, no second job


def test_a_dead_jobs_batch_is_taken_over_after_stuck_after(pending_event, settings):
    # Given a job that claimed the batch and died (no heartbeat since)
    settings.OFFCHAT_NOTIFY = {**SETTINGS, "STUCK_AFTER": 15}
    batch = sends.claim(pending_event.pk, "email", 10, lease=15)
    assert len(batch) == 6
    claimed = ChannelSend.objects.filter(pk__in=[s.pk for s in batch])
    # When 14 s have passed, the lease holds: the relay leaves it
    claimed.update(claimed_at=timezone.now() - timedelta(seconds=14))
    assert relay_channels() == []
    # And at 16 s it is the relay's: the job starts again and sends all six
    claimed.update(claimed_at=timezone.now() - timedelta(seconds=16))
    assert relay_channels() == [(pending_event.pk, "email")]
    assert ChannelSend.objects.filter(state="sent").count() == 6


SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_an_smtp_connection_without_email_timeout_gives_up_within_the_lease(settings):
    settings.OFFCHAT_NOTIFY = {"STUCK_AFTER": 15}
    if django.VERSION >= (6, 1):  # a mailer of MAILERS names its host
        settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": {"host": "localhost"}}}
    else:
        settings.EMAIL_BACKEND = SMTP
    connection = email._connection()
    assert isinstance(connection, SMTPBackend) and connection.timeout == 7.5
    # The host's own timeout stands
    if django.VERSION >= (6, 1):
        options = {"host": "localhost", "timeout": 30}
        settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": options}}
    else:
        settings.EMAIL_TIMEOUT = 30
    assert email._connection().timeout == 30
