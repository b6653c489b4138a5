"""SQLite with a worker: W010 names the settings, and a lock wait is not an ERROR (issue #12)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from unittest import mock

import dramatiq
import pytest
from django.core import checks
from django.db import OperationalError
from django.test import override_settings

from offchat_notify import Audience
from offchat_notify.checks import check_sqlite
from offchat_notify.delivery import deliver
from offchat_notify.exceptions import TransientDeliveryError, is_lock_wait
from offchat_notify.models import Event

HINT = (
    'DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20} '
    "(SQLite is for development: one writer at a time. Use PostgreSQL in production.)"
)


def databases(vendor="sqlite", **options):
    """Stand-in for django.db.connections: one database, "default"."""
    return {"default": SimpleNamespace(vendor=vendor, settings_dict={"OPTIONS": options})}


def w010(options_text):
    return checks.Warning(
        "Workers write to the SQLite database 'default' from several threads and "
        f"processes at once, and its OPTIONS {options_text}: deliveries fail with "
        "'database is locked' and are retried.",
        hint=HINT,
        id="offchat_notify.W010",
    )


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({}, 'lack "transaction_mode": "IMMEDIATE" and a "timeout" of at least 20 s'),
        ({"timeout": 20}, 'lack "transaction_mode": "IMMEDIATE"'),
        ({"transaction_mode": "IMMEDIATE"}, 'lack a "timeout" of at least 20 s'),
        (
            {"transaction_mode": "DEFERRED", "timeout": 5},
            'lack "transaction_mode": "IMMEDIATE" and a "timeout" of at least 20 s',
        ),
    ],
)
def test_a_worker_backend_on_sqlite_without_the_lock_options_is_warned(options, text):
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"}),
        mock.patch("offchat_notify.checks.connections", databases(**options)),
    ):
        assert check_sqlite() == [w010(text)]


@pytest.mark.parametrize(
    ("backend", "db"),
    [
        ("dramatiq", databases(transaction_mode="IMMEDIATE", timeout=20)),
        ("dramatiq", databases(transaction_mode="immediate", timeout=30.0)),
        ("dramatiq", databases(transaction_mode="EXCLUSIVE", timeout=20)),
        ("dramatiq", databases("postgresql")),
        ("sync", databases()),  # one process, one thread: no lock to wait for
        ("eager", databases()),
    ],
)
def test_no_warning_with_the_options_another_database_or_an_in_process_backend(backend, db):
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": backend}),
        mock.patch("offchat_notify.checks.connections", db),
    ):
        assert check_sqlite() == []


def test_w010_runs_with_manage_py_check():
    from django.core.management import call_command

    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"}),
        mock.patch("offchat_notify.checks.connections", databases()),
        pytest.raises(Exception) as raised,
    ):
        call_command("check", "--tag", "offchat_notify", "--fail-level", "WARNING")
    assert "offchat_notify.W010" in str(raised.value)


def test_is_lock_wait_finds_sqlites_error_through_the_chain():
    locked = OperationalError("database is locked")
    assert is_lock_wait(locked)
    try:
        try:
            raise locked
        except OperationalError as exc:
            raise TransientDeliveryError("Event 1: ...") from exc
    except TransientDeliveryError as wrapped:
        assert is_lock_wait(wrapped)
    assert not is_lock_wait(OperationalError("server closed the connection unexpectedly"))
    assert not is_lock_wait(ValueError("database is locked"))


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["claim", "_write"])
def test_a_lock_wait_is_logged_as_a_warning_without_a_traceback(make_users, caplog, where):
    make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    locked = OperationalError("database is locked")
    with (
        mock.patch(f"offchat_notify.delivery.{where}", side_effect=locked),
        caplog.at_level(logging.INFO, logger="offchat_notify"),
        pytest.raises(TransientDeliveryError),
    ):
        deliver(event.pk)
    records = [r for r in caplog.records if r.name.startswith("offchat_notify")]
    assert records, caplog.text
    assert all(r.levelno == logging.WARNING for r in records), caplog.text
    assert all(r.exc_info is None for r in records)
    assert "database is locked" in caplog.text
    assert "will retry" in caplog.text


@pytest.mark.django_db
def test_other_failures_are_still_errors(make_users, caplog):
    make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    with (
        mock.patch("offchat_notify.delivery._write", side_effect=OperationalError("disk I/O")),
        pytest.raises(TransientDeliveryError),
    ):
        deliver(event.pk)
    assert [r.levelno for r in caplog.records if r.name.startswith("offchat_notify")] == [
        logging.ERROR
    ]


@pytest.mark.django_db
def test_the_actor_retries_a_lock_wait_quietly_and_other_failures_as_before(make_users):
    """dramatiq logs nothing for a ``dramatiq.Retry``; any other exception is an
    ERROR with its traceback. (An actor's ``throws=`` would not retry at all.)"""
    from offchat_notify.tasks import deliver_event, should_retry

    make_users(2, group="admin")
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    locked = OperationalError("database is locked")
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"}),
        mock.patch("offchat_notify.delivery._write", side_effect=locked),
        pytest.raises(TransientDeliveryError) as raised,
    ):
        deliver_event.fn(event.pk)
    assert isinstance(raised.value, dramatiq.Retry)
    assert should_retry(0, raised.value)
    assert "throws" not in deliver_event.options

    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"}),
        mock.patch("offchat_notify.delivery._write", side_effect=OperationalError("disk I/O")),
        pytest.raises(TransientDeliveryError) as raised,
    ):
        deliver_event.fn(event.pk)
    assert not isinstance(raised.value, dramatiq.Retry)
