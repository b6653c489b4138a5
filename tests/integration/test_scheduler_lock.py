"""The scheduler's Redis lock (redis-py's Lock) and tick claims, on the real Redis."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid

import pytest
from django.test import override_settings

from offchat_notify.scheduler.lock import RedisLeaderLock, get_lock

pytestmark = pytest.mark.redis


@pytest.fixture
def key():
    return f"offchat-test-lock:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def locks(redis_url, key):
    made: list[RedisLeaderLock] = []

    def make(ttl: float = 1) -> RedisLeaderLock:
        made.append(RedisLeaderLock.from_url(redis_url, ttl, key))
        return made[-1]

    yield make
    if made:
        client = made[0].client
        client.delete(key, *client.scan_iter(f"{key}:*"))
        for lock in made:
            lock.close()


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(locks):
    a, b = locks(ttl=1), locks(ttl=1)
    assert a.acquire() and not b.acquire()
    assert a.holder() == a.token == b.holder()
    assert not b.renew()
    b.release()  # not the holder: no effect
    assert a.holder() == a.token
    assert a.renew()
    a.release()
    assert a.holder() is None and b.acquire()


def test_the_lock_is_redis_pys_and_its_value_names_the_holder(locks, key):
    from redis.lock import Lock

    a = locks(ttl=2)
    assert isinstance(a.lock, Lock)
    assert re.fullmatch(
        rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{8}}", a.token
    ), a.token
    assert a.acquire()
    assert a.client.get(key) == a.token.encode()
    assert 1_000 < a.client.pttl(key) <= 2_000


def test_an_unrenewed_lock_expires_after_its_ttl(locks):
    a, b = locks(ttl=0.5), locks(ttl=0.5)
    assert a.acquire()
    time.sleep(0.3)
    assert a.renew()  # renewing restarts the 0.5 s
    time.sleep(0.3)
    assert not b.acquire()
    time.sleep(0.4)
    assert b.acquire() and not a.renew()


def test_a_lock_lost_to_expiry_is_noticed_and_never_released_from_its_successor(locks, key):
    a, b = locks(ttl=0.3), locks(ttl=0.3)
    assert a.acquire()
    time.sleep(0.5)
    assert a.holder() is None
    assert not a.renew()  # expired, nobody else holds it: still lost
    assert a.holder() is None  # and renewing did not bring it back
    assert b.acquire()
    assert not a.renew()
    a.release()  # a stale holder's release must not delete b's lock
    assert a.holder() == b.token
    assert b.renew()
    assert 200 < b.client.pttl(key) <= 300


def test_of_locks_racing_for_a_free_key_exactly_one_acquires(locks):
    racers = [locks(ttl=5) for _ in range(8)]
    start = threading.Barrier(len(racers))
    won: list[RedisLeaderLock] = []

    def race(lock: RedisLeaderLock) -> None:
        start.wait(5)
        if lock.acquire():
            won.append(lock)

    threads = [threading.Thread(target=race, args=(lock,)) for lock in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1, won
    assert racers[0].holder() == won[0].token
    assert [lock.renew() for lock in racers].count(True) == 1


def test_a_tick_is_claimed_once_and_never_after_a_later_one(locks):
    a, b = locks(), locks()
    assert a.last_tick("job") is None
    assert a.claim_tick("job", 2_000, 60_000)
    assert not b.claim_tick("job", 2_000, 60_000)  # the same tick, another scheduler
    assert b.claim_tick("job", 4_000, 60_000)
    assert not a.claim_tick("job", 2_000, 60_000)  # a late scheduler, an older tick
    assert b.claim_tick("other", 2_000, 60_000)
    assert a.last_tick("job") == 4_000


def test_claims_are_forgotten_after_keep_ms(locks):
    a = locks()
    assert a.claim_tick("job", 4_000, 200)
    time.sleep(0.4)
    assert a.last_tick("job") is None


def test_by_default_the_lock_runs_on_the_redis_brokers_own_connections(redis_broker, key):
    """No SCHEDULER_LOCK_URL: the lock and claims go through the broker's connection pool."""
    pool = redis_broker.client.connection_pool
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "SCHEDULER_LOCK_KEY": key}):
        first, second = get_lock(), get_lock()
    try:
        assert isinstance(first, RedisLeaderLock)
        assert first.client.connection_pool is pool and second.client.connection_pool is pool
        assert first.acquire() and not second.acquire()
        assert redis_broker.client.get(key) == first.token.encode()
        assert second.holder() == first.token
        assert first.claim_tick("job", 2_000, 60_000) and not second.claim_tick("job", 2_000, 1)
        assert redis_broker.client.get(f"{key}:tick:job") == b"2000"
        first.release()
        assert second.acquire() and second.renew()
        # Closing the lock's client leaves the broker's pool, and the broker, working.
        first.close()
        second.close()
        assert redis_broker.client.ping()
        assert second.holder() == second.token
    finally:
        redis_broker.client.delete(key, f"{key}:tick:job")
