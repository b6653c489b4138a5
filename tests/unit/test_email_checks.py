"""The email channel's system check (W014) and the shape of EMAIL_SITE_URL (E002)."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from offchat_notify.channels import email_checks
from offchat_notify.checks import check_settings

EMAIL_VERBS = {"comment.posted": ["email"], "digest": ["email", "webpush"], "x": ["webpush"]}


def ours():
    """Every check message of the app, as Django's check command runs them."""
    return [m for m in checks.run_checks(tags=["offchat_notify"]) if m.id.startswith("offchat")]


def ids(messages):
    return [m.id for m in messages]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "CHANNELS_BY_VERB": EMAIL_VERBS})
def test_verbs_sending_email_without_a_site_url_warn_and_say_what_to_set():
    (message,) = email_checks.check_email()
    assert message.id == "offchat_notify.W014" and message.level == checks.WARNING
    assert "'comment.posted', 'digest'" in message.msg and "'x'" not in message.msg
    assert "EMAIL_SITE_URL" in message.msg and "RFC 8058" in message.msg
    assert "Gmail" in message.msg and "Yahoo" in message.msg
    assert "EMAIL_SITE_URL" in message.hint and '"https://chat.example.com"' in message.hint
    assert "offchat_notify.W014" in ids(ours())  # registered with the app's checks


@pytest.mark.parametrize(
    "conf",
    [
        {},  # no verb sends email by default
        {"CHANNELS_BY_VERB": {"x": ["webpush"], "y": []}},
        {"CHANNELS_BY_VERB": EMAIL_VERBS, "EMAIL_SITE_URL": "https://chat.example.com"},
        {"CHANNELS_BY_VERB": EMAIL_VERBS, "EMAIL_SITE_URL": "http://127.0.0.1:8000/"},
        # mandatory verbs never carry an unsubscribe link
        {"CHANNELS_BY_VERB": {"security.alert": ["email"]}, "MANDATORY_VERBS": ["security.alert"]},
    ],
)
def test_quiet_when_every_email_can_carry_its_link_or_none_should(conf):
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", **conf}):
        assert email_checks.check_email() == []
        assert "offchat_notify.W014" not in ids(ours())


def test_a_mandatory_verb_is_left_out_of_the_warning():
    conf = {
        "BACKEND": "sync",
        "CHANNELS_BY_VERB": {"security.alert": ["email"], "comment.posted": ["email"]},
        "MANDATORY_VERBS": ["security.alert"],
    }
    with override_settings(OFFCHAT_NOTIFY=conf):
        (message,) = email_checks.check_email()
    assert "'comment.posted'" in message.msg and "security.alert" not in message.msg


def test_many_verbs_are_counted_not_listed():
    verbs = {f"verb.{i}": ["email"] for i in range(8)}
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "CHANNELS_BY_VERB": verbs}):
        (message,) = email_checks.check_email()
    assert "'verb.4'" in message.msg and "'verb.5'" not in message.msg
    assert "and 3 more" in message.msg


@pytest.mark.parametrize(
    "site",
    [
        "",
        "chat.example.com",
        "https://",
        "http://",
        "https:/chat.example.com",
        "ftp://chat.example.com",
        "https://chat.example.com?utm=x",
        "https://chat.example.com/#top",
        "https://chat example.com",
        " https://chat.example.com",
        "https://chat.example.com\r\nBcc: x@example.com",
        "https://chat.example.com:port",
        "https://[::1",
        42,
    ],
)
def test_a_site_url_that_is_not_an_absolute_http_url_is_an_error(site):
    conf = {"BACKEND": "sync", "CHANNELS_BY_VERB": EMAIL_VERBS, "EMAIL_SITE_URL": site}
    with override_settings(OFFCHAT_NOTIFY=conf):
        errors = check_settings()
        assert ids(errors) == ["offchat_notify.E002"]
        assert "EMAIL_SITE_URL" in errors[0].msg and "https://chat.example.com" in errors[0].hint
        # the bad value is the error to fix; no warning repeats it
        assert email_checks.check_email() == []


@pytest.mark.parametrize(
    "site",
    [
        "https://chat.example.com",
        "https://chat.example.com/",
        "https://example.com/chat/",
        "http://127.0.0.1:8000",
        "https://[::1]:8443",
    ],
)
def test_an_absolute_site_url_is_accepted(site):
    conf = {"BACKEND": "sync", "CHANNELS_BY_VERB": EMAIL_VERBS, "EMAIL_SITE_URL": site}
    with override_settings(OFFCHAT_NOTIFY=conf):
        assert check_settings() == []
        assert email_checks.check_email() == []
