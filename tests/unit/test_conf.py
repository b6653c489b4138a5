"""The OFFCHAT_NOTIFY setting: defaults, validation, override_settings."""

from __future__ import annotations

import pytest
from django.test import override_settings

from offchat_notify.backends import get_backend
from offchat_notify.backends.eager import EagerBackend
from offchat_notify.backends.sync import SyncBackend
from offchat_notify.conf import DEFAULTS, find_problems, get_settings
from offchat_notify.exceptions import NotifyConfigurationError, NotifyDeprecationWarning


def test_defaults_fill_in_what_is_not_set():
    with override_settings(OFFCHAT_NOTIFY={}):
        conf = get_settings()
    assert conf.BACKEND == "dramatiq"
    assert conf.OPTIONS == {}
    assert conf.PAGE_SIZE == 10_000
    assert conf.backend_path == "offchat_notify.backends.dramatiq.backend.DramatiqBackend"


def test_override_settings_takes_effect_at_once():
    assert isinstance(get_backend(), SyncBackend)
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "eager"}):
        assert isinstance(get_backend(), EagerBackend)
    assert isinstance(get_backend(), SyncBackend)


def test_unknown_keys_are_errors_with_a_suggestion():
    (problem,) = find_problems({"PAGESIZE": 5})
    assert problem.id == "offchat_notify.E001"
    assert "Did you mean 'PAGE_SIZE'?" in problem.hint
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
        ({"PAGE_SIZE": 0}, "PAGE_SIZE"),
        ({"PAGE_SIZE": True}, "PAGE_SIZE"),
        ({"OPTIONS": ["QUEUE"]}, "OPTIONS"),
        ({"RETENTION_DAYS": -1}, "RETENTION_DAYS"),
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


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"QUEUE": "no spaces"}, "'no spaces' is not a valid dramatiq queue name"),
        ({"ON_BROKER_ERROR": "ignore"}, "['ON_BROKER_ERROR'] must be one of"),
        ({"QUEUES": "x"}, "DramatiqBackend takes no option 'QUEUES'"),
    ],
)
def test_backend_options_are_checked_by_the_backend(options, message):
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "OPTIONS": options}),
        pytest.raises(NotifyConfigurationError) as raised,
    ):
        get_backend()
    assert message in str(raised.value)


def test_a_renamed_key_still_works_with_a_deprecation_warning():
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "QUEUE": "jobs", "CHUNK_SIZE": 7}),
        pytest.warns(NotifyDeprecationWarning) as warned,
    ):
        conf = get_settings()
        backend = get_backend()
    assert (conf.PAGE_SIZE, backend.options["QUEUE"]) == (7, "jobs")
    # Only this category: a ResourceWarning from garbage collected elsewhere may land here too
    ours = [w for w in warned if issubclass(w.category, NotifyDeprecationWarning)]
    assert sorted(str(w.message).split("]")[0] for w in ours) == [
        "OFFCHAT_NOTIFY['CHUNK_SIZE'",
        "OFFCHAT_NOTIFY['QUEUE'",
    ]


def test_a_renamed_dramatiq_key_is_not_passed_to_another_backend():
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "DISPATCH": "background"}),
        pytest.warns(NotifyDeprecationWarning),
    ):
        assert get_backend().options == {}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"STUCK_AFTER": float("nan")}, "STUCK_AFTER"),
        ({"HEALTH_MAX_AGE": float("nan")}, "HEALTH_MAX_AGE"),
        ({"RELAY_AFTER": float("inf")}, "RELAY_AFTER"),
        ({"STUCK_AFTER": 0.5}, "STUCK_AFTER"),
        ({"SCHEDULER_LOCK_TTL": 0.05}, "SCHEDULER_LOCK_TTL"),
        ({"SCHEDULER_GRACE": 10**12}, "SCHEDULER_GRACE"),
        ({"SCHEDULER_LOCK_URL": "localhost:6379"}, "SCHEDULER_LOCK_URL"),
    ],
)
def test_seconds_must_be_finite_and_within_their_bounds(raw, key):
    (problem,) = find_problems(raw)
    assert (problem.id, problem.key) == ("offchat_notify.E002", key)


def test_a_lock_url_that_is_not_one_is_refused_without_showing_it():
    (problem,) = find_problems({"SCHEDULER_LOCK_URL": "user:s3cret@host"})
    assert "s3cret" not in str(problem)


def test_field_roles_refuses_a_string_for_its_roles():
    from offchat_notify.roles import FieldRoles

    with pytest.raises(NotifyConfigurationError, match=r"must be a list of role names"):
        FieldRoles(roles="admin")
