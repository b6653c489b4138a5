"""``channels=[...]`` on notify(), notify_admins(), send_bulk_notification() and Notice."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from offchat_notify import Audience, notify, notify_admins, send_bulk_notification
from offchat_notify.conf import get_settings
from offchat_notify.exceptions import InvalidNotification, NotifyConfigurationError
from offchat_notify.models import ChannelSend, Event
from offchat_notify.registry import Notice

pytestmark = pytest.mark.django_db
PENDING = {"BACKEND": "dramatiq", "OPTIONS": {"DISPATCH": "background"}}


@pytest.fixture
def users(make_users):
    return make_users(2, group="admin")


def stored(event: Event) -> list[str]:
    return Event.objects.get(pk=event.pk).channels


def test_channels_are_stored_on_the_event_once_each(users):
    event = notify(Audience.users(users), "x", channels=["email", "webpush", "email"])
    assert stored(event) == ["email", "webpush"]


def test_without_channels_an_event_goes_to_the_inbox_only(users):
    assert stored(notify(Audience.users(users), "x")) == []


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "CHANNELS_BY_VERB": {"flag": ["email"]}})
def test_channels_by_verb_gives_the_default_and_an_explicit_list_wins(users):
    assert stored(notify(Audience.users(users), "flag")) == ["email"]
    assert stored(notify(Audience.users(users), "other")) == []
    assert stored(notify(Audience.users(users), "flag", channels=[])) == []


def test_every_entry_point_takes_channels(users):
    assert stored(notify_admins("x", channels=["email"])) == ["email"]
    ids = [u.pk for u in users]
    assert stored(send_bulk_notification("x", user_ids=ids, channels=("email",))) == ["email"]
    notice = Notice(audience=Audience.users(users), verb="x", channels=["webpush"])
    assert stored(notice.send()) == ["webpush"]


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (["sms"], "Unknown channel 'sms'; the channels are 'email', 'webpush'"),
        ("email", "channels must be a list of channels"),
        ([None], "Unknown channel None"),
    ],
)
def test_bad_channels_are_refused_and_nothing_is_written(users, channels, message):
    with pytest.raises(InvalidNotification, match=message):
        notify(Audience.users(users), "x", channels=channels)
    assert Event.objects.count() == 0


@pytest.mark.parametrize("value", [[], {"x": "email"}, {"x": ["sms"]}, {"": ["email"]}])
def test_channels_by_verb_must_map_verbs_to_known_channels(value):
    with (
        override_settings(OFFCHAT_NOTIFY={"CHANNELS_BY_VERB": value}),
        pytest.raises(NotifyConfigurationError, match="CHANNELS_BY_VERB"),
    ):
        get_settings()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("EMAIL_BATCH_SIZE", 0),
        ("EMAIL_BATCH_SIZE", True),
        ("EMAIL_RATE_LIMIT", 0),
        ("EMAIL_RATE_LIMIT", float("inf")),
        ("EMAIL_LANGUAGE", ""),
        ("EMAIL_LANGUAGE", 3),
        ("EMAIL_SITE_URL", "example.com"),
        ("EMAIL_SITE_URL", "https://example.com\nX: y"),
        ("EMAIL_UNSUBSCRIBE_DAYS", 0),
    ],
)
def test_bad_email_settings_are_refused(key, value):
    with (
        override_settings(OFFCHAT_NOTIFY={key: value}),
        pytest.raises(NotifyConfigurationError, match=key),
    ):
        get_settings()


def test_notify_status_counts_channel_sends_per_state(users):
    event = notify(Audience.users(users), "x", channels=["email"])
    ChannelSend.objects.bulk_create(
        [
            ChannelSend(event=event, recipient=users[0], channel="email", state="sent"),
            ChannelSend(event=event, recipient=users[1], channel="email", state="failed"),
        ]
    )
    out = StringIO()
    call_command("notify_status", stdout=out)
    assert "Channel email: " in out.getvalue()
    assert "1 sent" in out.getvalue() and "1 failed" in out.getvalue()
