"""notify_doctor: what it may claim about workers, the scheduler, and SQLite."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from offchat_notify import Audience
from offchat_notify.models import Event

pytestmark = pytest.mark.django_db

#: The dramatiq backend on its own: no periodic job, so no scheduler finding.
DRAMATIQ_ALONE = {"BACKEND": "dramatiq", "SCHEDULE": {"relay": None}, "SCHEDULER_LOCK_URL": ""}
WORKER = "python manage.py rundramatiq --processes 2 --threads 4"


def doctor(*args: str) -> tuple[list[str], int]:
    """The doctor's lines and its exit status.

    Ages of 600 to 609 s read "600s": the tests set 600, and the doctor takes
    a moment to get there.
    """
    out = StringIO()
    try:
        call_command("notify_doctor", *args, stdout=out)
    except SystemExit as exit_:
        code = exit_.code
    else:
        code = 0
    return re.sub(r"\b60\ds\b", "600s", out.getvalue()).splitlines(), code


@pytest.fixture
def quiet_redis(redis_broker):
    """The Redis broker with no heartbeat and nothing in flight: no process has used it.

    (The fixture's own flush, a broker command, leaves a heartbeat, as any sender
    does; and it keeps acknowledgement sets, which a test may leave.)
    """

    def quiet() -> None:
        ns = redis_broker.namespace
        client = redis_broker.client
        client.delete(f"{ns}:__heartbeats__", *client.scan_iter(match=f"{ns}:__acks__.*"))

    quiet()
    yield redis_broker
    quiet()


def heartbeat(broker, name: str = "some-web-process") -> None:
    """A process with a fresh heartbeat: what a web process that sent leaves behind."""
    seconds, micros = broker.client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    broker.client.zadd(f"{broker.namespace}:__heartbeats__", {name: now_ms})


def worked_on(seconds_ago: float, *, state=Event.State.DELIVERED, started_ago=None) -> Event:
    """An Event a worker last touched (claimed, advanced, delivered) ``seconds_ago``."""
    now = timezone.now()
    event = Event.objects.create(verb="x", audience=Audience.users([1]).spec, state=state)
    Event.objects.filter(pk=event.pk).update(
        updated_at=now - timedelta(seconds=seconds_ago),
        started_at=now - timedelta(seconds=seconds_ago if started_ago is None else started_ago),
    )
    return event


# Workers: claimed only on evidence


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_says_no_worker_seen_when_no_process_has_a_heartbeat(quiet_redis):
    lines, code = doctor()
    assert (
        "[warn] no worker seen: no process has a live redis heartbeat (0 message(s) waiting)"
        in lines
    )
    assert f"       fix: Start one: {WORKER}" in lines
    assert not [line for line in lines if "consuming" in line]
    assert code == 0


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_fails_when_messages_wait_and_no_process_has_a_heartbeat(quiet_redis):
    quiet_redis.client.rpush(f"{quiet_redis.namespace}:offchat_notify", "a-message-id")
    lines, code = doctor()
    assert (
        "[FAIL] no worker seen: no process has a live redis heartbeat (1 message(s) waiting)"
        in lines
    )
    assert code == 1


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_cannot_tell_when_processes_are_connected_but_nothing_happens(quiet_redis):
    heartbeat(quiet_redis)
    lines, code = doctor()
    assert (
        "[warn] cannot tell whether a worker runs: no message waiting and no delivery "
        "activity yet (1 process(es) connected to redis: workers, or processes that sent)"
    ) in lines
    assert (
        f"       fix: Check that a worker runs ({WORKER}), or send a notification and run "
        "notify_doctor again."
    ) in lines
    assert not [line for line in lines if "consuming" in line]
    assert code == 0


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_says_a_worker_is_at_work_when_one_delivered_lately(quiet_redis):
    heartbeat(quiet_redis)
    worked_on(seconds_ago=5)
    lines, code = doctor()
    assert "[ok  ] a worker is at work: delivery activity 5s ago (0 ready)" in lines
    assert code == 0


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_a_long_delivery_that_progresses_shows_a_worker_at_work(quiet_redis):
    heartbeat(quiet_redis)
    worked_on(seconds_ago=3, state=Event.State.DELIVERING, started_ago=900)
    lines, _code = doctor()
    assert "[ok  ] a worker is at work: delivery activity 3s ago (0 ready)" in lines


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_messages_left_in_flight_by_a_dead_worker_prove_no_worker(quiet_redis):
    # A worker killed while it held a message leaves its acknowledgement set
    # behind; a web process that sends keeps a heartbeat.
    ns = quiet_redis.namespace
    quiet_redis.client.sadd(f"{ns}:__acks__.a-dead-worker.offchat_notify", "a-message-id")
    heartbeat(quiet_redis)
    worked_on(seconds_ago=600)
    lines, code = doctor()
    assert (
        "[warn] cannot tell whether a worker runs: 1 message(s) in flight but no delivery "
        "activity in 600s (a long periodic job, or a worker that died holding them)"
    ) in lines
    assert not [line for line in lines if "consuming" in line or "at work" in line]
    assert code == 0

    quiet_redis.client.rpush(f"{ns}:offchat_notify", "another-message-id")
    lines, code = doctor()
    assert (
        "[warn] 1 message(s) wait, 1 in flight, and no delivery activity in 600s: the workers "
        "are stuck, or died holding those messages"
    ) in lines


@override_settings(OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_says_when_the_last_delivery_activity_was_long_ago(quiet_redis):
    heartbeat(quiet_redis)
    worked_on(seconds_ago=600)
    lines, _code = doctor()
    assert (
        "[warn] cannot tell whether a worker runs: no message waiting and no delivery "
        "activity in 600s (1 process(es) connected to redis: workers, or processes that sent)"
    ) in lines
    quiet_redis.client.rpush(f"{quiet_redis.namespace}:offchat_notify", "a-message-id")
    lines, code = doctor()
    assert "[FAIL] 1 message(s) wait and no delivery activity in 600s" in lines
    assert code == 1


# The scheduler matters less when nothing runs in a worker


def test_doctor_only_warns_of_a_missing_scheduler_with_the_sync_backend(redis_url):
    lock = {"SCHEDULER_LOCK_URL": redis_url, "SCHEDULER_LOCK_KEY": f"test-{uuid.uuid4()}"}
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", **lock}):
        lines, code = doctor()
    assert (
        "[warn] no scheduler is running (nobody holds the scheduler lock): the relay and "
        "retention do not run"
    ) in lines
    assert (
        "       fix: Start one: python manage.py notify_scheduler (with the sync backend, the "
        "relay only re-sends Events whose delivery failed or was cut off)"
    ) in lines
    assert code == 0


# SQLite


@pytest.fixture
def sqlite(monkeypatch):
    """Make the default database look like SQLite, with the OPTIONS given."""

    def use(options: dict) -> None:
        connection = connections["default"]
        monkeypatch.setattr(connection, "vendor", "sqlite")
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)

    return use


@override_settings(DEBUG=True, OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": ""})
def test_doctor_says_sqlite_is_fine_for_development(sqlite):
    sqlite({})
    lines, code = doctor("--strict")
    assert (
        "[ok  ] the database 'default' is SQLite: fine for development; production needs PostgreSQL"
    ) in lines


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": ""})
def test_doctor_warns_of_sqlite_with_debug_off(sqlite):
    sqlite({})
    lines, _code = doctor()
    assert (
        "[warn] the database 'default' is SQLite, with DEBUG off: production needs PostgreSQL"
        in lines
    )
    assert (
        "       fix: Use PostgreSQL (ENGINE 'django.db.backends.postgresql'): SQLite takes one "
        "writer at a time, so notify() and the deliveries wait for each other."
    ) in lines


@override_settings(DEBUG=True, OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_gives_the_sqlite_options_a_worker_needs(sqlite):
    sqlite({"timeout": 5})
    lines, _code = doctor()
    assert (
        "[warn] offchat_notify.W010: Workers write to the SQLite database 'default' from "
        "several threads and processes at once, and its OPTIONS lack "
        '"transaction_mode": "IMMEDIATE" and a "timeout" of at least 20 s: deliveries fail '
        "with 'database is locked' and are retried."
    ) in lines
    assert (
        '       fix: DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", '
        '"timeout": 20} (SQLite is for development: one writer at a time. Use PostgreSQL in '
        "production.)"
    ) in lines


@override_settings(DEBUG=True, OFFCHAT_NOTIFY=DRAMATIQ_ALONE)
def test_doctor_accepts_sqlite_set_up_for_a_worker(sqlite):
    sqlite({"transaction_mode": "IMMEDIATE", "timeout": 20})
    lines, _code = doctor()
    assert (
        "[ok  ] the workers wait for SQLite's write lock (IMMEDIATE transactions, timeout 20 s)"
    ) in lines
    assert not [line for line in lines if "W010" in line]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_URL": ""})
def test_doctor_says_nothing_of_sqlite_on_postgresql(monkeypatch):
    monkeypatch.setattr(connections["default"], "vendor", "postgresql")
    lines, _code = doctor()
    assert not [line for line in lines if "SQLite" in line]
