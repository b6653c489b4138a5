"""The scheduler process without processes: where the lock lives, NoLock, ticks, catch-up."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from offchat_notify.exceptions import NotifyConfigurationError
from offchat_notify.scheduler import Job
from offchat_notify.scheduler.lock import (
    NoLock,
    RedisLeaderLock,
    get_lock,
    lock_configured,
)
from offchat_notify.scheduler.loop import LeaderLoop
from tests.testapp import jobs as testjobs

UTC = dt_timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2024, 1, 15, 10, 0, 3, tzinfo=UTC)  # a Monday
RECORD = "tests.testapp.jobs.record"


# Which tick a run belongs to


@pytest.mark.parametrize(
    ("job", "now", "tick"),
    [
        (Job("j", RECORD, every=timedelta(seconds=2)), NOW, NOW - timedelta(seconds=1)),
        (
            Job("j", RECORD, every=timedelta(seconds=2)),
            NOW + timedelta(seconds=1),
            NOW + timedelta(seconds=1),
        ),
        (Job("j", RECORD, every=timedelta(hours=1)), NOW, NOW - timedelta(seconds=3)),
        (Job("j", RECORD, cron="*/5 * * * *"), NOW, datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
        (Job("j", RECORD, cron="30 3 * * *"), NOW, datetime(2024, 1, 15, 3, 30, tzinfo=PARIS)),
        (Job("j", RECORD, cron="0 9 * * mon-fri"), NOW, datetime(2024, 1, 15, 9, tzinfo=PARIS)),
        (
            Job("j", RECORD, cron="0 9 * * mon-fri"),
            NOW - timedelta(days=1),  # Sunday: the tick was Friday's
            datetime(2024, 1, 12, 9, tzinfo=PARIS),
        ),
    ],
)
@override_settings(TIME_ZONE="Europe/Paris")
def test_last_fire_time_names_the_tick_a_run_belongs_to(job, now, tick):
    assert job.last_fire_time(now) == tick


# Where the lock lives


def redis_broker(**options):
    """A dramatiq RedisBroker that is never connected to: only its client is looked at."""
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(middleware=[], **options)


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"url": "redis://redis.internal:6379/4"}, "redis://redis.internal:6379/4"),
        ({}, "redis://localhost:6379/0"),
        ({"host": "cache", "port": 6380, "db": 2}, "redis://cache:6380/2"),
        ({"host": "cache", "password": "p@ss:w/rd"}, "redis://***@cache:6379/0"),
        ({"url": "redis://me:p%40ss@127.0.0.1:6379/0"}, "redis://***@127.0.0.1:6379/0"),
        ({"url": "rediss://cache:6380/1"}, "rediss://cache:6380/1"),
        ({"url": "unix:///run/redis.sock?db=3"}, "unix:///run/redis.sock?db=3"),
        (
            {"unix_socket_path": "/run/redis.sock", "password": "p@ss:w/rd"},
            "unix://***@/run/redis.sock?db=0",
        ),
    ],
    ids=["url", "defaults", "host-port-db", "password", "url-auth", "tls", "unix", "unix-auth"],
)
def test_by_default_the_lock_shares_the_connection_pool_of_a_redis_broker(
    use_broker, options, where
):
    broker = use_broker(redis_broker(**options))
    assert lock_configured()
    lock = get_lock()
    assert isinstance(lock, RedisLeaderLock)
    # The broker's pool, so its TLS, socket and credentials, in a client of the lock's own.
    assert lock.client.connection_pool is broker.client.connection_pool
    assert lock.client is not broker.client
    assert str(lock) == f"Redis lock 'offchat_notify:scheduler' at {where} (ttl 10s)"
    assert "p@ss" not in str(lock) and "p%40ss" not in str(lock)
    assert not lock.client.auto_close_connection_pool  # lock.close() leaves the pool open


def test_a_sentinel_broker_lends_its_pool_and_is_described_without_a_password(use_broker):
    from redis.sentinel import Sentinel

    client = Sentinel([("sentinel.internal", 26379)]).master_for("mymaster", password="pw", db=2)
    broker = use_broker(redis_broker(client=client))
    lock = get_lock()
    assert lock.client.connection_pool is broker.client.connection_pool
    assert (
        str(lock)
        == "Redis lock 'offchat_notify:scheduler' at Sentinel service 'mymaster' (db 2) (ttl 10s)"
    )


def test_no_lock_by_default_when_the_broker_is_not_redis(use_broker):
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    assert not lock_configured()  # the tests' stub broker
    assert isinstance(get_lock(), NoLock)
    use_broker(RabbitmqBroker(url="amqp://guest:guest@mq.internal:5672/%2F", middleware=[]))
    assert not lock_configured()
    assert isinstance(get_lock(), NoLock)


def test_without_django_dramatiq_the_broker_is_never_asked_for():
    """dramatiq.get_broker() would build a RabbitMQ broker when none was set."""
    from django.apps import apps

    def installed(name):
        return name != "django_dramatiq"

    with (
        mock.patch.object(apps, "is_installed", side_effect=installed),
        mock.patch("dramatiq.get_broker", side_effect=AssertionError("get_broker was called")),
    ):
        assert not lock_configured()
        assert isinstance(get_lock(), NoLock)


def test_scheduler_lock_url_points_elsewhere_or_turns_the_lock_off(use_broker):
    broker = use_broker(redis_broker(url="redis://broker:6379/0"))
    with override_settings(
        OFFCHAT_NOTIFY={"SCHEDULER_LOCK_URL": "redis://locks:6379/9", "SCHEDULER_LOCK_KEY": "k"},
    ):
        assert lock_configured()
        lock = get_lock()
        assert isinstance(lock, RedisLeaderLock)
        kwargs = lock.client.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("locks", 6379, 9)
        assert (lock.key, lock.ttl_ms) == ("k", 10_000)
        assert lock.client.connection_pool is not broker.client.connection_pool
        assert str(lock) == "Redis lock 'k' at redis://locks:6379/9 (ttl 10s)"
    with override_settings(OFFCHAT_NOTIFY={"SCHEDULER_LOCK_URL": ""}):
        assert not lock_configured()
        assert isinstance(get_lock(), NoLock)


def test_a_url_that_is_not_redis_is_a_configuration_error_that_hides_the_password():
    with (
        # A redis:// URL that passes the settings check but not redis-py's parser
        override_settings(OFFCHAT_NOTIFY={"SCHEDULER_LOCK_URL": "redis://:hunter2@locks:port/0"}),
        pytest.raises(NotifyConfigurationError) as info,
    ):
        get_lock()
    message = str(info.value)
    assert message.startswith("OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] is not a Redis URL (")
    assert "redis://, rediss:// or unix:// URL" in message and "hunter2" not in message


def test_nolock_always_leads_and_claims_each_tick_once_and_forwards_only():
    lock = NoLock()
    assert lock.acquire() and lock.renew() and lock.holder() is None
    lock.release()
    assert lock.last_tick("j") is None
    assert lock.claim_tick("j", 2000, 1) is True
    assert lock.claim_tick("j", 2000, 1) is False  # the same tick
    assert lock.claim_tick("j", 0, 1) is False  # an older one
    assert lock.claim_tick("k", 2000, 1) is True  # another job
    assert lock.claim_tick("j", 4000, 1) is True
    assert lock.last_tick("j") == 4000


# LeaderLoop


def make_loop(lock=None, **jobs):
    lines: list[str] = []
    loop = LeaderLoop(
        jobs or {"record": Job("record", RECORD, every=timedelta(seconds=2))},
        lock or NoLock(),
        log=lines.append,
    )
    return loop, lines


@pytest.mark.django_db
@override_settings(
    OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULE": {"record": {"task": RECORD, "every": 2}}}
)
def test_a_tick_runs_the_job_once_under_sync(caplog):
    loop, lines = make_loop()
    before = len(testjobs.calls)
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        loop.tick("record")
        loop.tick("record")  # the same tick, fired again
    assert len(testjobs.calls) == before + 1
    assert lines == ["Tick record (due 10:00:02) at 10:00:03.000000"]
    assert "Tick of record due at 2024-01-15 10:00:02+00:00 already ran" in caplog.text
    with mock.patch("django.utils.timezone.now", return_value=NOW + timedelta(seconds=1)):
        loop.tick("record")
    assert len(testjobs.calls) == before + 2


def test_a_new_leader_runs_a_missed_tick_once_within_the_grace_time():
    lock = NoLock()
    loop, lines = make_loop(lock)
    trigger = loop.jobs["record"].trigger()
    on_schedule = NOW + timedelta(seconds=1)
    # Never ran: on schedule.
    assert loop.first_run("record", loop.jobs["record"], trigger, NOW) == on_schedule
    # The last tick that ran was 10:00:02 itself: nothing missed.
    lock.claim_tick("record", int((NOW - timedelta(seconds=1)).timestamp() * 1000), 1)
    assert loop.first_run("record", loop.jobs["record"], trigger, NOW) == on_schedule
    # Three ticks later: one run, now, for the latest missed tick.
    later = NOW + timedelta(seconds=6)
    assert loop.first_run("record", loop.jobs["record"], trigger, later) == later - timedelta(
        seconds=1
    )
    assert lines == ["Catching up on record: its tick at 10:00:08 was missed."]
    # Missed by more than SCHEDULER_GRACE (300 s): wait for the next tick.
    much_later = NOW + timedelta(seconds=601)
    assert loop.first_run("record", loop.jobs["record"], trigger, much_later) == much_later


@override_settings(
    OFFCHAT_NOTIFY={
        "BACKEND": "sync",
        "SCHEDULER_GRACE": 7200,
        "SCHEDULE": {"hourly": {"task": RECORD, "every": 3600}},
    }
)
def test_leading_catches_up_at_once_then_stops_on_request():
    lock = NoLock()
    lock.claim_tick("hourly", int(time.time() * 1000) - 7_000_000, 1)  # two hours ago
    loop, lines = make_loop(lock, hourly=Job("hourly", RECORD, every=timedelta(hours=1)))
    before = len(testjobs.calls)
    thread = threading.Thread(target=loop.run)
    thread.start()
    deadline = time.monotonic() + 10
    while len(testjobs.calls) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop("test")
    thread.join(10)
    assert not thread.is_alive()
    assert len(testjobs.calls) == before + 1
    assert [line.split(" ")[0] for line in lines[:3]] == ["Scheduler", "", "Active:"]
    catching_up = next(
        i for i, line in enumerate(lines) if line.startswith("Catching up on hourly: its tick at ")
    )
    # The stop follows the catch-up, and the loop ends there. (The "next hourly"
    # line is printed by the loop's thread while the catch-up runs in
    # APScheduler's, so it may come before or after the stop message.)
    assert lines.index("Stopping the scheduler (test).") > catching_up
    assert lines[-1] == "Scheduler stopped."
    assert lines.count("Scheduler stopped.") == 1


class FlakyLock(NoLock):
    """Redis down at first, then another scheduler holds the lock."""

    def __init__(self, loop_stop):
        super().__init__()
        self.attempts = 0
        self.loop_stop = loop_stop

    def acquire(self):
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("Redis is down")
        if self.attempts == 3:
            self.loop_stop()
        return False

    def holder(self):
        return "other-host:123:abcd"

    def release(self):
        raise ConnectionError("Redis is down again")


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_TTL": 0.4})
def test_standby_survives_an_unreachable_redis_and_says_who_leads(caplog):
    loop, lines = make_loop(NoLock())
    loop.lock = FlakyLock(loop._stop.set)
    loop.run()
    assert loop.lock.attempts == 3
    assert "Could not reach the scheduler lock: Redis is down; retrying." in caplog.text
    assert "Could not release the scheduler lock: Redis is down again" in caplog.text
    assert lines[-2:] == [
        "Standby: the active scheduler is other-host:123:abcd.",
        "Scheduler stopped.",
    ]
