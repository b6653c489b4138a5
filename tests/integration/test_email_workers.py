"""Email end to end: a real ``rundramatiq`` worker, Redis, PostgreSQL and a real SMTP server."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat

from offchat_notify import Audience, notify
from offchat_notify.conf.defaults import DEFAULTS
from offchat_notify.models import ChannelSend
from offchat_notify.preferences import mute
from offchat_notify.relay import relay_channels
from tests.helpers import free_port, wait_for
from tests.integration.schedulers import Schedulers
from tests.smtp_server import SMTPServer

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.redis]
DEFAULT_BATCH = DEFAULTS["EMAIL_BATCH_SIZE"]
WORKER_SETTINGS = {"BACKEND": "dramatiq", "EMAIL_BATCH_SIZE": 50, "MAX_ATTEMPTS": 10}


@pytest.fixture
def smtp():
    server = SMTPServer(free_port()).start()
    yield server
    server.stop()


def with_emails(users):
    model = type(users[0])
    model.objects.filter(pk__in=[u.pk for u in users]).update(
        email=Concat(F("username"), Value("@example.com"))
    )
    return {u.pk: f"{u.username}@example.com".lower() for u in users}


def start(start_worker, smtp, **settings):
    return start_worker(
        "redis",
        env={
            "TEST_EMAIL_PORT": str(smtp.port),
            "TEST_OFFCHAT_NOTIFY": json.dumps({**WORKER_SETTINGS, **settings}),
        },
    )


def test_every_unmuted_recipient_gets_exactly_one_email(
    postgres, redis_broker, start_worker, make_users, settings, smtp
):
    # Given 200 users, 30 of whom muted the verb or the channel, and a worker
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    users = make_users(200)
    emails = with_emails(users)
    for user in users[:15]:
        mute(user, "email", "comment.posted")
    for user in users[15:30]:
        mute(user, "email")
    worker = start(start_worker, smtp)
    # When
    notify(Audience.users(users), "comment.posted", title="Hello", channels=["email"])
    # Then
    wait_for(
        lambda: (
            smtp.recorder.count() >= 170 and ChannelSend.objects.filter(state="sent").count() == 170
        ),
        timeout=60,
        what="170 emails",
        on_fail=lambda: f"{smtp.recorder.count()} received\n{worker.output()}",
    )
    time.sleep(1)  # anything extra would arrive now
    assert dict(smtp.recorder.received) == {emails[u.pk]: 1 for u in users[30:]}
    assert ChannelSend.objects.count() == 170  # no row for a muted user
    assert b"List-Unsubscribe-Post" not in smtp.recorder.messages[0]  # no EMAIL_SITE_URL


def test_smtp_down_during_a_fan_out_loses_nothing(
    postgres, redis_broker, start_worker, make_users, settings, smtp
):
    # Given 120 users and an SMTP server that is down
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq"}
    users = make_users(120)
    emails = with_emails(users)
    smtp.stop()
    worker = start(start_worker, smtp)
    # When the fan-out runs while the server is down
    notify(Audience.users(users), "x", title="Down", channels=["email"])
    wait_for(
        lambda: ChannelSend.objects.filter(last_error__icontains="refused").exists(),
        timeout=60,
        what="a send to fail on the refused connection",
        on_fail=worker.output,
    )
    assert ChannelSend.objects.filter(state="sent").count() == 0
    # Then once it is back, the retries send every email, once
    smtp.start()
    wait_for(
        lambda: ChannelSend.objects.filter(state="sent").count() == 120,
        timeout=90,
        what="all 120 emails after the server came back",
        on_fail=lambda: f"{ChannelSend.objects.values('state').order_by()}\n{worker.output()}",
    )
    time.sleep(1)
    assert dict(smtp.recorder.received) == {emails[u.pk]: 1 for u in users}
    assert relay_channels() == []  # nothing left for the relay


@pytest.mark.slow
def test_a_worker_sigkilled_mid_fan_out_is_taken_over_within_a_minute(
    postgres, redis_url, redis_broker, start_worker, make_users, settings, smtp, tmp_path
):
    # Given 5,000 users (100 of them muted), the default batches, lease and relay
    # (STUCK_AFTER 15 s, the scheduler's relay every 5 s), at 300 emails/s so that
    # the fan-out lasts long enough to be killed in the middle
    conf = {"EMAIL_RATE_LIMIT": 300, "EMAIL_BATCH_SIZE": DEFAULT_BATCH}  # not the tests' 50
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", **conf}
    users = make_users(5000)
    emails = with_emails(users)
    for user in users[:100]:
        mute(user, "email")
    first = start(start_worker, smtp, **conf).wait_ready()
    schedulers = Schedulers(redis_url, connection.settings_dict["NAME"], tmp_path)
    [scheduler] = schedulers.start(1, backend="dramatiq", broker="redis", SCHEDULE={}, **conf)
    notify(Audience.users(users), "x", title="Kill", channels=["email"])
    try:
        wait_for(
            lambda: smtp.recorder.count() >= 1400,  # 400 into the third batch
            timeout=60,
            what="1,400 emails",
            on_fail=first.output,
        )
        # When the worker is SIGKILLed in the middle of the fan-out (and of a batch)
        first.kill()
        killed = time.monotonic()
        at_kill = smtp.recorder.count()
        marked = ChannelSend.objects.filter(state="sent").count()
        assert at_kill < 4900, "the fan-out finished before the kill; nothing was tested"
        # And a worker is started again
        second = start(start_worker, smtp, **conf).wait_ready()
        wait_for(
            lambda: ChannelSend.objects.filter(state="sent").count() == 4900,
            timeout=90,
            what="all 4,900 emails sent after the kill",
            on_fail=lambda: f"{second.output()}\n{schedulers.outputs()}",
        )
        recovered = time.monotonic() - killed
    finally:
        scheduler.stop()
    time.sleep(1)
    # Then every unmuted user has their email, the muted none, and the duplicates are
    # at most what went out since the last heartbeat: about a second at 300 a second
    received = dict(smtp.recorder.received)
    assert set(received) == {emails[u.pk] for u in users[100:]}
    duplicates = sum(n - 1 for n in received.values())
    print(
        f"\nemail SIGKILL at {at_kill} emails received ({marked} marked sent): all 4,900 "
        f"sent {recovered:.1f} s after the kill; {duplicates} duplicate(s) "
        f"(unmarked at the kill: {at_kill - marked}; batch {DEFAULT_BATCH})"
    )
    assert duplicates <= at_kill - marked <= 300 + 10 < DEFAULT_BATCH
    assert recovered < 60
