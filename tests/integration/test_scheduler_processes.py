"""``manage.py notify_scheduler`` as real processes on a real Redis, bounded in time.

The job under test (tests/testapp/jobs.py ``record``) ticks every 2 s and
appends "<time> <pid>" to a Redis list, so a test sees every run, when, and
in which process. Ticks fall on even Unix seconds; the tests act at odd
phases of that grid, so a run is never ambiguous about its window or its slot.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from offchat_notify.models import JobRun
from tests.helpers import wait_for
from tests.integration.schedulers import (
    PERIOD,
    RECORD,
    Schedulers,
    assert_each_tick_ran_once,
    at_phase,
    sleep_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def schedulers(postgres: None, redis_url: str, tmp_path: Path) -> Iterator[Schedulers]:
    """Scheduler processes on the test database, like a project's (the relay needs it)."""
    from django.db import connection

    group = Schedulers(redis_url, connection.settings_dict["NAME"], tmp_path)
    try:
        yield group
    finally:
        group.cleanup()


@pytest.mark.parametrize(
    "lock_on",
    [
        "lock-url",
        # No SCHEDULER_LOCK_URL: the lock shares the Redis broker's connection pool.
        "broker",
    ],
)
def test_three_schedulers_tick_once_per_period_and_a_standby_takes_over_a_killed_leader(
    schedulers, lock_on
):
    on_broker = {"broker": "redis", "SCHEDULER_LOCK_URL": ...} if lock_on == "broker" else {}
    procs = schedulers.start(3, ttl=2, **on_broker)
    leader = schedulers.wait_ready(procs)
    assert f"Redis lock '{schedulers.lock_key}' at {settings.REDIS_URL}" in leader.output()
    # 20 s with three schedulers: one tick every 2 s, run once.
    start = at_phase(1.0)
    sleep_until(start + 20)
    first = schedulers.runs(start, start + 20)
    assert {pid for _, pid in first} == {leader.pid}, schedulers.outputs()
    # SIGKILL the leader: it cannot release the lock, which must expire.
    leader = schedulers.leader()
    killed_at = time.time()
    leader.send(signal.SIGKILL)
    successor = wait_for(
        lambda: (
            schedulers.client.get(schedulers.lock_key)
            and schedulers.leader() is not leader
            and schedulers.leader()
        ),
        timeout=15,
        what="a standby to take the lock",
        on_fail=schedulers.outputs,
    )
    takeover = time.time() - killed_at
    sleep_until(killed_at + 20)
    second = schedulers.runs(killed_at, killed_at + 20)
    print(f"\ntakeover after SIGKILL: {takeover:.2f} s (TTL 2 s); runs {len(first)}, {len(second)}")
    assert 9 <= len(first) <= 11, (first, schedulers.outputs())
    assert 9 <= len(second) <= 11, (second, schedulers.outputs())
    assert {pid for _, pid in second} == {successor.pid}, schedulers.outputs()
    assert takeover <= 2 * 2 + 0.5  # within about two lock periods
    assert_each_tick_ran_once(schedulers.runs(), schedulers.outputs())


def test_a_paused_scheduler_coalesces_the_missed_ticks_into_one_run(schedulers):
    (proc,) = schedulers.start(1, ttl=30)  # the lock outlives the pause
    schedulers.wait_ready([proc])
    wait_for(lambda: schedulers.runs(), timeout=10, what="a first run", on_fail=proc.output)
    stopped = at_phase(1.0)
    proc.send(signal.SIGSTOP)
    sleep_until(stopped + 3 * PERIOD)  # the ticks at +1, +3 and +5 s are missed
    resumed = time.time()
    proc.send(signal.SIGCONT)
    sleep_until(resumed + 4.5)
    assert schedulers.runs(stopped, resumed) == []
    catch_up = schedulers.runs(resumed, resumed + 0.9)
    assert len(catch_up) == 1, (catch_up, proc.output())  # one run, not three
    assert len(schedulers.runs(resumed + 0.9, resumed + 4.5)) == 2  # then on time again
    latest_missed = time.strftime("%H:%M:%S", time.gmtime(stopped + 5))
    assert f"Tick record (due {latest_missed})" in proc.output()
    assert JobRun.objects.get(name="record").runs == len(schedulers.runs())
    assert_each_tick_ran_once(schedulers.runs(), proc.output())


def test_a_leader_paused_past_its_lock_never_runs_a_tick_its_successor_ran(schedulers):
    procs = schedulers.start(2, ttl=2)
    leader = schedulers.wait_ready(procs)
    (standby,) = [p for p in procs if p is not leader]
    stopped = at_phase(1.5)
    leader.send(signal.SIGSTOP)
    # The standby takes over and ticks; the paused leader wakes up half a
    # period after a tick its successor ran, believing it still leads.
    wait_for(
        lambda: schedulers.runs(stopped) and schedulers.runs(stopped)[-1][1] == standby.pid,
        timeout=10,
        what="the standby to run a tick",
        on_fail=schedulers.outputs,
    )
    sleep_until(stopped + 3 * PERIOD)
    leader.send(signal.SIGCONT)
    wait_for(
        lambda: "Lost the lock" in leader.output() and "Standby:" in leader.output(),
        timeout=10,
        what="the old leader to notice and stand by",
        on_fail=schedulers.outputs,
    )
    sleep_until(stopped + 5 * PERIOD)
    assert [pid for _, pid in schedulers.runs(stopped)] == [standby.pid] * len(
        schedulers.runs(stopped)
    ), schedulers.outputs()
    assert len(schedulers.runs(stopped)) >= 3
    assert_each_tick_ran_once(schedulers.runs(), schedulers.outputs())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_stop_cleanly_and_hand_over_at_once(schedulers, sig):
    procs = schedulers.start(2, ttl=10)
    leader = schedulers.wait_ready(procs)
    (standby,) = [p for p in procs if p is not leader]
    stopped_at = time.time()
    assert leader.stop(sig) == 0, leader.output()
    wait_for(
        lambda: "Active:" in standby.output(),
        timeout=10,
        what="the standby to take over",
        on_fail=schedulers.outputs,
    )
    # The lock was released, not left to expire (10 s).
    assert time.time() - stopped_at < 5
    name = signal.Signals(sig).name
    lines = leader.output().splitlines()
    assert lines[-2:] == [f"Stopping the scheduler ({name}).", "Scheduler stopped."], lines
    assert any(line == "  job record: tests.testapp.jobs.record, every 2s" for line in lines)
    assert standby.stop(sig) == 0
    assert schedulers.client.get(schedulers.lock_key) is None


def test_a_bad_cron_keeps_the_scheduler_from_starting(schedulers):
    (proc,) = schedulers.start(1, SCHEDULE={"nightly": {"task": RECORD["task"], "cron": "0 3 * *"}})
    assert proc.proc.wait(timeout=60) == 1
    assert "(offchat_notify.E011) Periodic job 'nightly' has an invalid cron schedule" in (
        proc.output()
    )


@pytest.mark.postgres
@pytest.mark.worker
def test_under_dramatiq_a_worker_runs_each_tick(schedulers, redis_broker, start_worker):
    env = schedulers.env(backend="dramatiq", broker="redis", SCHEDULER_LOCK_URL=...)
    worker = start_worker(
        "redis",
        env={k: env[k] for k in ("TEST_OFFCHAT_NOTIFY", "TEST_SCHEDULER_RUNS_KEY", "PYTHONPATH")},
    ).wait_ready()
    # The lock lives in the broker's Redis: no SCHEDULER_LOCK_URL.
    (proc,) = schedulers.start(1, backend="dramatiq", broker="redis", SCHEDULER_LOCK_URL=...)
    schedulers.wait_ready([proc])
    assert f"Redis lock '{schedulers.lock_key}' at {settings.REDIS_URL}" in proc.output()
    wait_for(
        lambda: len(schedulers.runs()) >= 4,
        timeout=30,
        what="four runs by the worker",
        on_fail=lambda: f"{proc.output()}\n{worker.output()}",
    )
    assert proc.stop() == 0
    ticks = proc.output().count("Tick record (due ")
    wait_for(
        lambda: len(schedulers.runs()) == ticks,
        timeout=15,
        what=f"the worker to run all {ticks} ticks",
        on_fail=lambda: f"{schedulers.runs()}\n{proc.output()}\n{worker.output()}",
    )
    assert proc.pid not in {pid for _, pid in schedulers.runs()}
