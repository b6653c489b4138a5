"""Periodic jobs: @periodic, SCHEDULE merging, checks E011/E012/W005, notify_scheduler --list."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from offchat_notify.checks import check_schedule, check_scheduler_lock
from offchat_notify.exceptions import NotifyConfigurationError
from offchat_notify.schedule import jobs as scheduler_jobs
from offchat_notify.scheduler import Job, get_jobs, periodic
from tests.testapp import jobs as testjobs

RELAY = Job("relay", "offchat_notify.relay.relay", every=timedelta(seconds=5))
RETENTION = Job("retention", "offchat_notify.retention.purge", cron="30 3 * * *")
RECORD = "tests.testapp.jobs.record"


@pytest.fixture(autouse=True)
def _isolated_decorated_jobs():
    saved = dict(scheduler_jobs._decorated)
    yield
    scheduler_jobs._decorated.clear()
    scheduler_jobs._decorated.update(saved)


def schedule(**entries):
    return override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULE": entries})


# @periodic


def test_periodic_registers_the_function_by_its_dotted_path_and_returns_it():
    def digest():
        return "ran"

    assert periodic(cron="*/5 * * * *")(digest) is digest
    task = f"{__name__}.{test_periodic_registers_the_function_by_its_dotted_path_and_returns_it.__name__}.<locals>.digest"  # noqa: E501
    assert get_jobs()[task] == Job(task, task, cron="*/5 * * * *")


def test_periodic_takes_a_name_and_an_interval():
    periodic(every=timedelta(seconds=30), name="ping")(testjobs.record)
    assert get_jobs()["ping"] == Job("ping", RECORD, every=timedelta(seconds=30))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "periodic() takes exactly one of cron= and every=."),
        ({"cron": "* * * * *", "every": timedelta(1)}, "exactly one of cron= and every="),
        ({"every": 30}, "periodic(every=...) takes a positive timedelta, not 30."),
        ({"every": timedelta(0)}, "takes a positive timedelta, not datetime.timedelta(0)."),
    ],
)
def test_periodic_refuses_bad_timing_at_import(kwargs, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        periodic(**kwargs)


# get_jobs: built-ins, retiming, disabling, dotted paths


def test_by_default_only_the_relay_runs():
    assert get_jobs() == {"relay": RELAY}


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "RETENTION_DAYS": 30})
def test_retention_runs_when_retention_days_is_set():
    assert get_jobs() == {"relay": RELAY, "retention": RETENTION}


def test_built_ins_can_be_retimed_and_disabled():
    with schedule(relay={"cron": "*/2 * * * *"}):
        assert get_jobs() == {"relay": Job("relay", RELAY.task, cron="*/2 * * * *")}
    with schedule(relay={"every": timedelta(minutes=1)}):
        assert get_jobs()["relay"].every == timedelta(minutes=1)
    with schedule(relay=None):
        assert get_jobs() == {}


def test_host_jobs_by_dotted_path_with_seconds_or_a_timedelta():
    with schedule(
        record={"task": RECORD, "every": 2}, nightly={"task": RECORD, "cron": "0 1 * * *"}
    ):
        assert get_jobs() == {
            "relay": RELAY,
            "record": Job("record", RECORD, every=timedelta(seconds=2)),
            "nightly": Job("nightly", RECORD, cron="0 1 * * *"),
        }


def test_schedule_retimes_or_disables_a_decorated_job_by_name():
    periodic(every=timedelta(seconds=30), name="ping")(testjobs.record)
    with schedule(ping={"cron": "0 * * * *"}):
        assert get_jobs()["ping"] == Job("ping", RECORD, cron="0 * * * *")
    with schedule(ping=None):
        assert "ping" not in get_jobs()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            {"x": "*/5 * * * *"},
            "OFFCHAT_NOTIFY['SCHEDULE']['x'] must be a dict or None, not '*/5 * * * *'.",
        ),
        ({"relay": 30}, "OFFCHAT_NOTIFY['SCHEDULE']['relay'] must be a dict or None, not 30."),
        (
            {"x": {"task": RECORD, "every": 1, "minute": 5}},
            "OFFCHAT_NOTIFY['SCHEDULE']['x'] has unknown key(s) ['minute']; use task, cron, every.",
        ),
        (
            {"relay": {"evry": 5}},
            "OFFCHAT_NOTIFY['SCHEDULE']['relay'] has unknown key(s) ['evry']; "
            "use task, cron, every.",
        ),
        (
            {"x": {"every": 1}},
            "OFFCHAT_NOTIFY['SCHEDULE']['x'] needs a 'task': the dotted path of a function.",
        ),
        (
            {"x": {"task": RECORD}},
            "OFFCHAT_NOTIFY['SCHEDULE']['x'] needs exactly one of 'cron' and 'every'.",
        ),
        (
            {"relay": {"cron": "* * * * *", "every": 5}},
            "OFFCHAT_NOTIFY['SCHEDULE']['relay'] needs exactly one of 'cron' and 'every'.",
        ),
        (
            {"x": {"task": RECORD, "every": "5"}},
            "OFFCHAT_NOTIFY['SCHEDULE']['x']['every'] must be seconds or a timedelta.",
        ),
        (
            {"x": {"task": RECORD, "every": True}},
            "OFFCHAT_NOTIFY['SCHEDULE']['x']['every'] must be seconds or a timedelta.",
        ),
        (
            {"x": {"task": RECORD, "every": 0}},
            "OFFCHAT_NOTIFY['SCHEDULE']['x']['every'] must be positive.",
        ),
    ],
)
def test_schedule_mistakes_are_configuration_errors_and_e011(entries, message):
    with schedule(**entries):
        with pytest.raises(NotifyConfigurationError) as exc:
            get_jobs()
        assert str(exc.value) == message
        assert check_schedule() == [
            checks.Error(
                message,
                hint="Each SCHEDULE entry is None (disabled) or a dict with 'task' (for your own "
                "jobs) and one of 'cron' and 'every'.",
                id="offchat_notify.E011",
            )
        ]


# Checks


CRON_HINT = (
    "Five fields: minute hour day-of-month month day-of-week, "
    "for example '*/5 * * * *' or '0 9 * * mon-fri'."
)


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        (
            "*/5 * * *",
            "'*/5 * * *' is not a 5-field crontab expression (minute hour day month dow).",
        ),
        (
            "0 9 * * 1-5",
            "'0 9 * * 1-5': write the day of the week as names (mon-fri, sun): "
            "APScheduler 3 counts 0 as Monday where cron counts it as Sunday.",
        ),
        (
            "61 * * * *",
            "'61 * * * *': Error validating expression '61': "
            "the last value (61) is higher than the maximum value (59)",
        ),
        ("* * * * mon-fry", "'* * * * mon-fry': Invalid weekday name \"fry\""),
        ("0 0 31 2 *", "'0 0 31 2 *' never fires."),
    ],
)
def test_a_bad_cron_is_e011(cron, reason):
    with schedule(nightly={"task": RECORD, "cron": cron}):
        assert check_schedule() == [
            checks.Error(
                f"Periodic job 'nightly' has an invalid cron schedule: {reason}",
                hint=CRON_HINT,
                id="offchat_notify.E011",
            )
        ]


def test_a_bad_cron_on_a_decorated_job_fails_manage_py_check():
    periodic(cron="0 9 * * 1-5", name="weekdays")(testjobs.record)
    with pytest.raises(SystemCheckError, match=r"\(offchat_notify.E011\) Periodic job 'weekdays'"):
        call_command("check", tags=["offchat_notify"], stdout=StringIO(), stderr=StringIO())


def test_an_unknown_task_is_e012():
    with schedule(
        relay={"task": "offchat_notify.relay.nope"}, gone={"task": "tests.nowhere.job", "every": 5}
    ):
        hint = "Use the dotted path of a function that takes no arguments."
        assert check_schedule() == [
            checks.Error(
                "Periodic job 'gone' names 'tests.nowhere.job', which does not import: "
                "No module named 'tests.nowhere'",
                hint=hint,
                id="offchat_notify.E012",
            ),
            checks.Error(
                "Periodic job 'relay' names 'offchat_notify.relay.nope', which does not import: "
                'Module "offchat_notify.relay" does not define a "nope" attribute/class',
                hint=hint,
                id="offchat_notify.E012",
            ),
        ]


def test_a_task_that_is_not_a_function_is_e012():
    with schedule(answer={"task": "tests.testapp.jobs.calls", "every": 5}):
        assert check_schedule() == [
            checks.Error(
                "Periodic job 'answer' names 'tests.testapp.jobs.calls', which is a list, "
                "not a function",
                hint="Use the dotted path of a function that takes no arguments.",
                id="offchat_notify.E012",
            )
        ]


def test_good_schedules_have_no_messages():
    with schedule(
        record={"task": RECORD, "every": 2}, weekdays={"task": RECORD, "cron": "0 9 * * mon-fri"}
    ):
        assert check_schedule() == []


W005 = checks.Warning(
    "The scheduler has no Redis lock: two notify_scheduler processes would both "
    "run every periodic job.",
    hint="Run exactly one notify_scheduler, or set OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] to a "
    "Redis URL (a Redis DRAMATIQ_BROKER is used by default).",
    id="offchat_notify.W005",
)


def test_w005_without_redis_and_not_with_it(use_broker):
    from dramatiq.brokers.redis import RedisBroker

    assert check_scheduler_lock() == [W005]  # the tests' stub broker
    with override_settings(
        OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": "redis://cache:6379/2"}
    ):
        assert check_scheduler_lock() == []
    # The broker django-dramatiq built is Redis (the check never connects to it).
    use_broker(RedisBroker(url="redis://cache:6379/0", middleware=[]))
    assert check_scheduler_lock() == []
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": ""}):
        assert check_scheduler_lock() == [W005]


def test_w005_is_a_deploy_check():
    assert check_scheduler_lock in checks.registry.registry.get_checks(
        include_deployment_checks=True
    )
    assert check_scheduler_lock not in checks.registry.registry.get_checks()
