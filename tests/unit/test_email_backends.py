"""The deliver_channel job on every backend: sync, eager, tasks, and chunked Events."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test import override_settings

from offchat_notify import notify_admins
from offchat_notify.models import ChannelSend, Event

pytestmark = pytest.mark.django_db(transaction=True)
FRAMEWORK = getattr(settings, "TASKS_FRAMEWORK", None)


@pytest.fixture
def admins(make_users):
    users = make_users(5, group="admin")
    model = type(users[0])
    model.objects.filter(pk__in=[u.pk for u in users]).update(
        email=Concat(F("username"), Value("@example.com"))
    )
    return {f"{u.username}@example.com" for u in users}


def check_sent(event: Event, admins: set[str]) -> None:
    assert sorted(m.to[0] for m in mail.outbox) == sorted(admins)
    assert ChannelSend.objects.filter(event=event, state="sent").count() == len(admins)


@pytest.mark.parametrize(
    "backend",
    [
        "sync",
        "eager",
        pytest.param(
            "tasks", marks=pytest.mark.skipif(FRAMEWORK is None, reason="no Tasks framework")
        ),
    ],
)
def test_every_backend_runs_the_email_job(backend, admins):
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": backend}):
        event = notify_admins("x", title="t", channels=["email"])
    check_sent(event, admins)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "PARALLEL_CHUNK": 2, "PAGE_SIZE": 2})
def test_the_last_chunk_of_a_large_event_starts_the_email_job(admins):
    event = notify_admins("x", title="t", channels=["email"])
    assert event.chunks.count() == 2
    check_sent(event, admins)


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "CHANNELS_BY_VERB": {"flag": ["email"]}})
def test_channels_by_verb_sends_email_without_channels(admins):
    check_sent(notify_admins("flag", title="t"), admins)
