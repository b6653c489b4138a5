"""System checks: exact messages, stable ids."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django_dramatiq.apps import DEFAULT_BROKER_SETTINGS

from offchat_notify.backends.dramatiq import checks as dramatiq_checks
from offchat_notify.backends.dramatiq.checks import EXAMPLE_BROKER
from offchat_notify.backends.dramatiq.checks import check_setup as check_dramatiq_setup
from offchat_notify.checks import check_deploy, check_renamed, check_settings
from offchat_notify.conf import DEFAULTS

GOOD_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]


def broker(**overrides):
    value = {"BROKER": "dramatiq.brokers.stub.StubBroker", "MIDDLEWARE": GOOD_MIDDLEWARE}
    value.update(overrides)
    return SimpleNamespace(DRAMATIQ_BROKER={k: v for k, v in value.items() if v is not None})


def test_a_good_setup_has_no_messages():
    assert check_settings() == []
    assert check_dramatiq_setup(broker()) == []


def test_unknown_key():
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "PAGESIZE": "x"}):
        assert check_settings() == [
            checks.Error(
                "OFFCHAT_NOTIFY['PAGESIZE'] is not a known setting.",
                hint=f"Did you mean 'PAGE_SIZE'? Known keys: {', '.join(DEFAULTS)}.",
                id="offchat_notify.E001",
            )
        ]


def test_bad_value():
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "PAGE_SIZE": "big"}):
        assert check_settings() == [
            checks.Error(
                "OFFCHAT_NOTIFY['PAGE_SIZE'] must be a positive integer, not 'big'.",
                hint="Default: 10000.",
                id="offchat_notify.E002",
            )
        ]


def test_backend_that_does_not_import():
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "myproject.backends.Nope"}):
        (error,) = check_settings()
    assert error.id == "offchat_notify.E003"
    assert "could not import 'myproject.backends.Nope'" in error.msg


def test_backend_that_is_not_a_backend():
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "django.db.models.Model"}):
        (error,) = check_settings()
    assert error.id == "offchat_notify.E003"
    assert "is not a subclass of offchat_notify.backends.base.BaseBackend" in error.msg


def test_unknown_resolver():
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "ROLE_RESOLVER": "x.Roles"}):
        (error,) = check_settings()
    assert error.id == "offchat_notify.E004"
    assert "could not import 'x.Roles'" in error.msg


def test_field_resolver_on_a_field_the_user_model_lacks():
    with override_settings(
        OFFCHAT_NOTIFY={
            "BACKEND": "sync",
            "ROLE_RESOLVER": "offchat_notify.roles.FieldRoles",
            "ROLE_RESOLVER_OPTIONS": {"field": "rank", "roles": ["a"]},
        }
    ):
        (error,) = check_settings()
    assert error.id == "offchat_notify.E004"
    assert "has no field 'rank'" in error.msg


def test_resolver_options_it_does_not_take():
    with override_settings(
        OFFCHAT_NOTIFY={"BACKEND": "sync", "ROLE_RESOLVER_OPTIONS": {"field": "role"}}
    ):
        (error,) = check_settings()
    assert error.id == "offchat_notify.E004"


def test_dramatiq_backend_delegates_to_the_broker_checks():
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"}, DRAMATIQ_BROKER={}):
        assert [e.id for e in check_settings()] == ["offchat_notify.E006"]


def test_dramatiq_backend_without_django_dramatiq_installed():
    with mock.patch(
        "offchat_notify.backends.dramatiq.checks.apps.is_installed", return_value=False
    ):
        (error,) = check_dramatiq_setup(broker())
    assert error.id == "offchat_notify.E005"
    assert error.hint.startswith("Add 'django_dramatiq' to INSTALLED_APPS")


def test_a_project_not_yet_on_django_dramatiq_learns_all_it_needs_at_once():
    with mock.patch(
        "offchat_notify.backends.dramatiq.checks.apps.is_installed", return_value=False
    ):
        messages = check_dramatiq_setup(SimpleNamespace())
    assert [m.id for m in messages] == ["offchat_notify.E005", "offchat_notify.E006"]


def test_no_dramatiq_broker_setting():
    assert check_dramatiq_setup(SimpleNamespace()) == [
        checks.Error(
            "The 'dramatiq' backend needs a DRAMATIQ_BROKER setting with a BROKER.",
            hint=f"For Redis: {EXAMPLE_BROKER}",
            id="offchat_notify.E006",
        )
    ]


def test_broker_class_that_does_not_import():
    (error,) = check_dramatiq_setup(broker(BROKER="dramatiq.brokers.nope.NopeBroker"))
    assert error.id == "offchat_notify.E007"


def test_django_dramatiq_default_middleware_list_is_explained():
    # Given django-dramatiq's own default DRAMATIQ_BROKER (which names a class
    # dramatiq 2 removed)
    messages = check_dramatiq_setup(SimpleNamespace(DRAMATIQ_BROKER=DEFAULT_BROKER_SETTINGS))
    # Then
    (error,) = [m for m in messages if m.id == "offchat_notify.E008"]
    assert error.msg == (
        "DRAMATIQ_BROKER['MIDDLEWARE'] names 'dramatiq.middleware.Prometheus', "
        "which does not import."
    )
    assert "dramatiq.middleware.prometheus.Prometheus" in error.hint


def test_missing_middleware_list_is_an_error():
    (error,) = check_dramatiq_setup(broker(MIDDLEWARE=None))
    assert error.id == "offchat_notify.E010"
    assert "the delivery actor cannot be declared" in error.msg


def test_middleware_the_actor_options_need_and_db_connections():
    messages = check_dramatiq_setup(broker(MIDDLEWARE=["dramatiq.middleware.AgeLimit"]))
    assert [(m.id, m.level, m.msg) for m in messages] == [
        (
            "offchat_notify.E010",
            checks.ERROR,
            "DRAMATIQ_BROKER['MIDDLEWARE'] lacks dramatiq.middleware.Retries, which the "
            "delivery actor's options (retry_when, min_backoff, max_backoff) need.",
        ),
        (
            "offchat_notify.E010",
            checks.ERROR,
            "DRAMATIQ_BROKER['MIDDLEWARE'] lacks dramatiq.middleware.TimeLimit, which the "
            "delivery actor's options (time_limit) need.",
        ),
        (
            "offchat_notify.W002",
            checks.WARNING,
            "DRAMATIQ_BROKER['MIDDLEWARE'] lacks "
            "django_dramatiq.middleware.DbConnectionsMiddleware: workers would keep stale "
            "database connections.",
        ),
    ]


@pytest.mark.parametrize(("backend", "count"), [("sync", 1), ("eager", 1), ("dramatiq", 0)])
def test_deploy_check_warns_about_in_process_backends(backend, count):
    with override_settings(
        OFFCHAT_NOTIFY={"BACKEND": backend},
        DEBUG=False,
        DRAMATIQ_BROKER={"BROKER": "dramatiq.brokers.redis.RedisBroker"},
    ):
        assert [m.id for m in check_deploy() if m.id == "offchat_notify.W003"] == [
            "offchat_notify.W003"
        ] * count


def test_manage_py_check_reports_by_tag():
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "PAGE_SIZE": 0}),
        pytest.raises(SystemCheckError, match=r"offchat_notify\.E002"),
    ):
        call_command("check", tags=["offchat_notify"])


def test_deploy_check_warns_about_the_stub_broker_in_production():
    with override_settings(
        OFFCHAT_NOTIFY={"BACKEND": "dramatiq"},
        DRAMATIQ_BROKER={"BROKER": "dramatiq.brokers.stub.StubBroker"},
    ):
        assert [m.id for m in check_deploy()] == ["offchat_notify.W004"]


def redis_broker_settings(broker: str, url: str):
    return override_settings(
        OFFCHAT_NOTIFY={"BACKEND": "dramatiq"},
        DRAMATIQ_BROKER={"BROKER": broker, "OPTIONS": {"url": url}},
    )


def test_deploy_checks_a_redis_broker_for_timeouts_and_poison_handling():
    with redis_broker_settings("dramatiq.brokers.redis.RedisBroker", "redis://r:6379/0"):
        assert [m.id for m in dramatiq_checks.check_deploy()] == [
            "offchat_notify.W006",
            "offchat_notify.W007",
        ]
        assert [m.id for m in check_deploy()] == ["offchat_notify.W006", "offchat_notify.W007"]
    good = "redis://r:6379/0?socket_connect_timeout=1&socket_timeout=1"
    with redis_broker_settings("offchat_notify.backends.dramatiq.broker.RedisBroker", good):
        assert check_deploy() == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"CHUNK_SIZE": 5}, "OFFCHAT_NOTIFY['PAGE_SIZE']"),
        ({"QUEUE": "q"}, "OFFCHAT_NOTIFY['OPTIONS']['QUEUE']"),
        ({"DISPATCH": "background"}, "OFFCHAT_NOTIFY['OPTIONS']['DISPATCH']"),
        ({"ON_BROKER_ERROR": "sync"}, "OFFCHAT_NOTIFY['OPTIONS']['ON_BROKER_ERROR']"),
    ],
)
def test_a_renamed_key_still_works_and_its_check_names_the_new_key(old, new):
    (key,) = old
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", **old}):
        assert check_settings() == []
        assert check_renamed() == [
            checks.Warning(
                f"OFFCHAT_NOTIFY[{key!r}] is deprecated and will stop working in 0.3.",
                hint=f"Use {new}.",
                id="offchat_notify.W008",
            )
        ]
