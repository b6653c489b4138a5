"""The OFFCHAT_NOTIFY setting: defaults, validation, override_settings."""

from __future__ import annotations

import pytest
from django.test import override_settings

from offchat_notify.backends import get_backend
from offchat_notify.backends.eager import EagerBackend
from offchat_notify.backends.sync import SyncBackend
from offchat_notify.conf import DEFAULTS, find_problems, get_settings
from offchat_notify.exceptions import NotifyConfigurationError


def test_defaults_fill_in_what_is_not_set():
    with override_settings(OFFCHAT_NOTIFY={}):
        conf = get_settings()
    assert conf.BACKEND == "dramatiq"
    assert conf.QUEUE == "offchat_notify"
    assert conf.CHUNK_SIZE == 10_000
    assert conf.ON_BROKER_ERROR == "defer"
    assert conf.backend_path == "offchat_notify.backends.dramatiq.DramatiqBackend"


def test_override_settings_takes_effect_at_once():
    assert isinstance(get_backend(), SyncBackend)
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "eager"}):
        assert isinstance(get_backend(), EagerBackend)
    assert isinstance(get_backend(), SyncBackend)


def test_unknown_keys_are_errors_with_a_suggestion():
    (problem,) = find_problems({"CHUNKSIZE": 5})
    assert problem.id == "offchat_notify.E001"
    assert "Did you mean 'CHUNK_SIZE'?" in problem.hint
    with (
        override_settings(OFFCHAT_NOTIFY={"BAKEND": "sync"}),
        pytest.raises(
            NotifyConfigurationError, match=r"OFFCHAT_NOTIFY\['BAKEND'\]: is not a known setting"
        ),
    ):
        get_settings()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"CHUNK_SIZE": 0}, "CHUNK_SIZE"),
        ({"CHUNK_SIZE": True}, "CHUNK_SIZE"),
        ({"ON_BROKER_ERROR": "ignore"}, "ON_BROKER_ERROR"),
        ({"RETENTION_DAYS": -1}, "RETENTION_DAYS"),
        ({"QUEUE": "no spaces"}, "QUEUE"),
        ({"BACKEND": ""}, "BACKEND"),
        ({"SCHEDULE": []}, "SCHEDULE"),
        ({"ROLE_RESOLVER_OPTIONS": None}, "ROLE_RESOLVER_OPTIONS"),
    ],
)
def test_bad_values_are_reported_against_their_key(raw, key):
    (problem,) = find_problems(raw)
    assert (problem.id, problem.key) == ("offchat_notify.E002", key)


def test_the_setting_must_be_a_dict():
    (problem,) = find_problems(["sync"])
    assert problem.msg == "must be a dict, not list."


def test_every_default_is_valid():
    assert find_problems(dict(DEFAULTS)) == []
