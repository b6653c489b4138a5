"""The scheduler's Redis lock and tick claims, on the real Redis."""

from __future__ import annotations

import time
import uuid

import pytest

from offchat_notify.leader import RedisLeaderLock

pytestmark = pytest.mark.redis


@pytest.fixture
def locks(redis_url):
    key = f"offchat-test-lock:{uuid.uuid4().hex[:12]}"
    made: list[RedisLeaderLock] = []

    def make(ttl: float = 1) -> RedisLeaderLock:
        made.append(RedisLeaderLock(redis_url, ttl, key))
        return made[-1]

    yield make
    if made:
        client = made[0].client
        client.delete(key, *client.scan_iter(f"{key}:*"))
        for lock in made:
            lock.client.close()


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


def test_an_unrenewed_lock_expires_after_its_ttl(locks):
    a, b = locks(ttl=0.5), locks(ttl=0.5)
    assert a.acquire()
    time.sleep(0.3)
    assert a.renew()  # renewing restarts the 0.5 s
    time.sleep(0.3)
    assert not b.acquire()
    time.sleep(0.4)
    assert b.acquire() and not a.renew()


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
