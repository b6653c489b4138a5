"""notify_scheduler (--list, signals) and how a tick reaches the job: run_job, enqueue(RUN_JOB)."""

from __future__ import annotations

import os
import signal
from datetime import datetime
from datetime import timezone as dt_timezone
from io import StringIO
from unittest import mock

import dramatiq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from dramatiq.brokers.stub import StubBroker

from offchat_notify.backends import get_backend
from offchat_notify.backends.base import RUN_JOB
from offchat_notify.exceptions import NotifyConfigurationError, PoisonMessage
from offchat_notify.schedule.runs import run_job
from offchat_notify.scheduler.lock import NoLock
from tests.helpers import broker_middleware
from tests.testapp import jobs as testjobs

RECORD = "tests.testapp.jobs.record"


def schedule(backend="sync", **entries):
    return override_settings(OFFCHAT_NOTIFY={"BACKEND": backend, "SCHEDULE": entries})


# run_job and the backends' enqueue(RUN_JOB, name)


def test_run_job_runs_the_function_in_this_process_and_logs(caplog):
    caplog.set_level("DEBUG", "offchat_notify")
    before = len(testjobs.calls)
    with schedule(record={"task": RECORD, "every": 2}):
        assert run_job("record").endswith(f" {os.getpid()}")
    assert len(testjobs.calls) == before + 1
    assert "Running periodic job record (tests.testapp.jobs.record)." in caplog.messages
    assert any(m.startswith("Periodic job record finished in ") for m in caplog.messages)


def test_run_job_refuses_an_unknown_name():
    with pytest.raises(
        NotifyConfigurationError, match=r"No periodic job named 'nope'; known: \['relay'\]"
    ):
        run_job("nope")


def test_run_job_lets_the_job_error_through():
    with (
        schedule(broken={"task": "tests.testapp.jobs.fail", "every": 5}),
        pytest.raises(RuntimeError, match="this job always fails"),
    ):
        run_job("broken")


@pytest.mark.parametrize("backend", ["sync", "eager"])
def test_in_process_backends_run_the_job_at_once(backend):
    before = len(testjobs.calls)
    with schedule(backend, record={"task": RECORD, "every": 2}):
        get_backend().enqueue(RUN_JOB, "record")
    assert len(testjobs.calls) == before + 1


@pytest.fixture
def job_broker(use_broker):
    """A fresh stub broker for the run_job actor, with a worker to run what it gets."""
    broker = StubBroker(middleware=broker_middleware())
    broker.emit_after("process_boot")
    return use_broker(broker)


def test_dramatiq_enqueues_the_job_name_for_a_worker(job_broker):
    before = len(testjobs.calls)
    with schedule("dramatiq", record={"task": RECORD, "every": 2}):
        get_backend().enqueue(RUN_JOB, "record")
        assert len(testjobs.calls) == before  # not run here
        (message,) = job_broker.queues["offchat_notify"].queue
        decoded = dramatiq.get_encoder().decode(message)
        assert (decoded["actor_name"], decoded["args"]) == ("offchat_notify.run_job", ["record"])
        worker = dramatiq.Worker(job_broker, worker_timeout=100)
        worker.start()
        try:
            job_broker.join("offchat_notify", fail_fast=True)
        finally:
            worker.stop()
    assert len(testjobs.calls) == before + 1


def test_the_actor_refuses_what_is_not_a_job_name():
    from offchat_notify.tasks import never_retry
    from offchat_notify.tasks import run_job as actor

    with pytest.raises(PoisonMessage):
        actor.fn(42)
    assert never_retry(0, RuntimeError()) is False


# notify_scheduler


NOW = datetime(2024, 1, 15, 10, 0, 3, tzinfo=dt_timezone.utc)


@override_settings(
    TIME_ZONE="Europe/Paris",
    OFFCHAT_NOTIFY={
        "BACKEND": "sync",
        "RETENTION_DAYS": 30,
        "SCHEDULE": {"record": {"task": RECORD, "every": 2}},
    },
)
def test_list_prints_each_job_with_its_next_run_in_time_zone():
    out = StringIO()
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        call_command("notify_scheduler", "--list", stdout=out)
    assert out.getvalue().splitlines() == [
        "record: tests.testapp.jobs.record, every 2s, next run 2024-01-15 11:00:04 CET",
        "relay: offchat_notify.relay.relay, every 5s, next run 2024-01-15 11:00:05 CET",
        "retention: offchat_notify.retention.purge, cron '30 3 * * *', "
        "next run 2024-01-16 03:30:00 CET",
        "Lock: no lock (single scheduler; set OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] to "
        "coordinate). Missed runs within 0:05:00 coalesce into one.",
    ]


@override_settings(
    OFFCHAT_NOTIFY={
        "BACKEND": "sync",
        "SCHEDULE": {"relay": None},
        "SCHEDULER_LOCK_URL": "redis://:secret@cache:6380/3",
        "SCHEDULER_LOCK_TTL": 4,
        "SCHEDULER_GRACE": 30,
    }
)
def test_list_without_jobs_names_the_lock_without_its_password():
    out = StringIO()
    call_command("notify_scheduler", "--list", stdout=out)
    assert out.getvalue().splitlines() == [
        "No periodic jobs.",
        "Lock: Redis lock 'offchat_notify:scheduler' at redis://***@cache:6380/3 (ttl 4s). "
        "Missed runs within 0:00:30 coalesce into one.",
    ]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULE": {"relay": None}})
def test_list_names_the_redis_broker_connection_that_the_lock_shares(use_broker):
    from dramatiq.brokers.redis import RedisBroker

    use_broker(RedisBroker(url="rediss://:secret@cache:6380/1", middleware=[]))
    out = StringIO()
    call_command("notify_scheduler", "--list", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "Lock: Redis lock 'offchat_notify:scheduler' at rediss://***@cache:6380/1 (ttl 10s). "
        "Missed runs within 0:05:00 coalesce into one."
    )
    assert "secret" not in out.getvalue()


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": "amqp://mq:5672"})
def test_a_lock_url_that_is_not_redis_stops_the_command():
    with pytest.raises(CommandError, match=r"\['SCHEDULER_LOCK_URL'\]: must be a Redis URL"):
        call_command("notify_scheduler", "--list", stdout=StringIO())


def test_a_bad_schedule_stops_the_command():
    with schedule(x={"every": 1}), pytest.raises(CommandError, match="needs a 'task'"):
        call_command("notify_scheduler", "--list", stdout=StringIO())


def test_the_command_runs_a_leader_loop_and_stops_it_on_sigterm_and_sigint():
    from offchat_notify.management.commands.notify_scheduler import Command

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    out = StringIO()
    try:
        with (
            schedule(record={"task": RECORD, "every": 2}),
            mock.patch.object(Command, "launch") as launch,
        ):
            call_command("notify_scheduler", stdout=out)
            (loop,) = launch.call_args.args
            assert sorted(loop.jobs) == ["record", "relay"]
            assert isinstance(loop.lock, NoLock)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop._stop.clear()
                signal.getsignal(sig)(sig, None)
                assert loop._stop.is_set()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert out.getvalue().splitlines() == [
        "Stopping the scheduler (SIGINT).",
        "Stopping the scheduler (SIGTERM).",
    ]
