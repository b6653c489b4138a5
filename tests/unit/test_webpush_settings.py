"""The shapes of the WEBPUSH_* settings (E002); whether the keys are keys is E018's."""

from __future__ import annotations

import pytest

from offchat_notify.conf import find_problems


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("WEBPUSH_VAPID_PRIVATE_KEY", 42),
        ("WEBPUSH_VAPID_PRIVATE_KEY", "  "),
        ("WEBPUSH_VAPID_PUBLIC_KEY", b"bytes"),
        ("WEBPUSH_VAPID_SUBJECT", "ops@example.com"),
        ("WEBPUSH_VAPID_SUBJECT", "http://example.com"),
        ("WEBPUSH_VAPID_SUBJECT", "mailto:a b@example.com"),
        ("WEBPUSH_TTL", -1),
        ("WEBPUSH_TTL", 10**9),
        ("WEBPUSH_TTL", True),
        ("WEBPUSH_TTL", 1.5),
    ],
)
def test_bad_values_are_e002(key, value):
    problems = find_problems({key: value})
    assert [(p.id, p.key) for p in problems] == [("offchat_notify.E002", key)]


def test_a_key_is_never_shown_in_the_message():
    problems = find_problems({"WEBPUSH_VAPID_PRIVATE_KEY": ["secret-material"]})
    assert "secret-material" not in str(problems[0])


@pytest.mark.parametrize(
    "value",
    [
        {"WEBPUSH_VAPID_SUBJECT": "mailto:ops@example.com", "WEBPUSH_TTL": 0},
        {"WEBPUSH_VAPID_SUBJECT": "https://example.com/contact", "WEBPUSH_TTL": 2419200},
        {"WEBPUSH_VAPID_PRIVATE_KEY": "x", "WEBPUSH_VAPID_PUBLIC_KEY": "y"},
    ],
)
def test_good_values_pass(value):
    assert find_problems(value) == []
