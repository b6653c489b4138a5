"""Shared fixtures.

Services (PostgreSQL, Redis, RabbitMQ) are found through DATABASE_URL,
REDIS_URL and RABBITMQ_URL. A test that needs one the machine lacks is skipped
with the reason on a laptop, and fails when the CI environment variable is set,
so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from offchat_notify.conf import reset_caches

from .helpers import RedisServer, WorkerProcess, broker_middleware, require


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _rabbitmq_answers() -> bool:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(settings.RABBITMQ_URL)).close()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_namespace() -> Iterator[None]:
    """Leave no key of this run in the shared Redis: its brokers, workers and
    schedulers keep theirs (queues, acks, heartbeats) under REDIS_NAMESPACE."""
    yield
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", settings.REDIS_NAMESPACE) + ":*"
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()
    except Exception:  # no redis-py, no Redis: nothing to delete
        pass


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    reset_caches(setting="OFFCHAT_NOTIFY")
    yield
    reset_caches(setting="OFFCHAT_NOTIFY")


@pytest.fixture
def postgres(transactional_db: None) -> None:
    """A committed-transaction PostgreSQL database that other processes can see."""
    from django.db import connection

    require(
        "PostgreSQL",
        connection.vendor == "postgresql",
        f"the test database is {connection.vendor}; set DATABASE_URL=postgres://...",
    )


@pytest.fixture
def redis_url() -> str:
    require("Redis", _redis_answers(), f"nothing answers at {settings.REDIS_URL} (REDIS_URL)")
    return settings.REDIS_URL


@pytest.fixture
def rabbitmq_url() -> str:
    require(
        "RabbitMQ",
        _rabbitmq_answers(),
        f"nothing answers at {settings.RABBITMQ_URL} (RABBITMQ_URL)",
    )
    return settings.RABBITMQ_URL


@pytest.fixture
def make_users(db: None) -> Callable[..., list[Any]]:
    """Create ``n`` users, optionally in a Group; return them in pk order."""
    from django.contrib.auth import get_user_model

    counter = iter(range(10**9))

    def make(n: int, *, group: str | None = None, **fields: Any) -> list[Any]:
        user_model = get_user_model()
        tag = uuid.uuid4().hex[:8]
        users = user_model.objects.bulk_create(
            [user_model(username=f"u{tag}-{next(counter)}", **fields) for _ in range(n)]
        )
        if group is not None:
            g, _ = Group.objects.get_or_create(name=group)
            through = user_model.groups.through
            through.objects.bulk_create([through(user_id=u.pk, group_id=g.pk) for u in users])
        return sorted(users, key=lambda u: u.pk)

    return make


def _swap_actor_broker(broker: Any) -> Iterator[Any]:
    """Point the library's actors at ``broker`` for one test, then restore them.

    Every actor of ``offchat_notify.tasks`` (``ACTORS``: deliver_event,
    deliver_chunk, run_job, deliver_channel) moves, and the global broker with them.
    """
    import dramatiq

    from offchat_notify.tasks import ACTORS

    previous_global = dramatiq.get_broker()
    previous = {actor: actor.broker for actor in ACTORS.values()}
    try:
        for actor in previous:
            broker.declare_actor(actor)
            actor.broker = broker
        dramatiq.set_broker(broker)
        yield broker
    finally:
        for actor, actor_broker in previous.items():
            actor.broker = actor_broker
        dramatiq.set_broker(previous_global)
        broker.close()


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[Any]:
    """A Redis broker in a namespace of its own, flushed before and after."""
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(
        url=redis_url, namespace=settings.REDIS_NAMESPACE, middleware=broker_middleware()
    )
    broker.flush_all()
    yield from _swap_actor_broker(broker)
    broker.flush_all()


@pytest.fixture
def rabbitmq_broker(rabbitmq_url: str) -> Iterator[Any]:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=rabbitmq_url, middleware=broker_middleware())
    from offchat_notify.tasks import deliver_event

    broker.declare_queue(deliver_event.queue_name)
    broker.flush_all()
    yield from _swap_actor_broker(broker)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free loopback port: a test may stop it."""
    require(
        "redis-server",
        RedisServer.available(),
        "the redis-server binary is not on PATH (apt-get install redis-server)",
    )
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def use_broker() -> Iterator[Callable[[Any], Any]]:
    """Point the library's actors at a broker the test built, until the test ends."""
    swaps: list[Iterator[Any]] = []

    def use(broker: Any) -> Any:
        swap = _swap_actor_broker(broker)
        next(swap)
        swaps.append(swap)
        return broker

    yield use
    for swap in reversed(swaps):
        next(swap, None)


@pytest.fixture
def private_queue() -> Iterator[str]:
    """Send the library's delivery jobs to a queue of this test's own.

    Workers must be told too: ``worker_env(OPTIONS={"QUEUE": private_queue})``. Workers of
    other test runs sharing the RabbitMQ server then never see its messages.
    Request it before any broker fixture, which declares the actor's queue.
    """
    from offchat_notify.tasks import deliver_chunk, deliver_event

    name = f"offchat_test_{uuid.uuid4().hex[:12]}"
    previous = {actor: actor.queue_name for actor in (deliver_event, deliver_chunk)}
    for actor in previous:
        actor.queue_name = name
    try:
        yield name
    finally:
        for actor, queue_name in previous.items():
            actor.queue_name = queue_name


@pytest.fixture
def private_rabbitmq(rabbitmq_url: str, private_queue: str, use_broker: Any) -> Iterator[Any]:
    """A RabbitMQ broker for the library's actor, on a private queue deleted afterwards."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = use_broker(RabbitmqBroker(url=rabbitmq_url, middleware=broker_middleware()))
    broker.declare_queue(private_queue, ensure=True)
    yield broker
    for name in (private_queue, f"{private_queue}.DQ", f"{private_queue}.XQ"):
        broker.channel.queue_delete(name)


@pytest.fixture
def start_worker(postgres: None, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes on the test database; stop them after the test.

    ``start_worker(broker, env=..., threads=..., processes=...)``: see WorkerProcess.
    """
    from django.db import connection

    workers: list[WorkerProcess] = []

    def start(broker: str, **options: Any) -> WorkerProcess:
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = WorkerProcess(broker, connection.settings_dict["NAME"], log, **options).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


SERVICE_MARKERS = ("postgres", "redis", "rabbitmq", "worker", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Fixtures name the services they need; make the markers follow them, so
    # ``-m "not redis"`` and the CI skip guard see every such test.
    fixture_markers = {
        "postgres": "postgres",
        "start_worker": "worker",
        "redis_url": "redis",
        "redis_broker": "redis",
        "redis_server": "redis",
        "rabbitmq_url": "rabbitmq",
        "rabbitmq_broker": "rabbitmq",
        "private_rabbitmq": "rabbitmq",
    }
    for item in items:
        for fixture, marker in fixture_markers.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


_service_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(marker in report.keywords for marker in SERVICE_MARKERS):
        _service_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a skipped test that needs a service fails the run."""
    if os.environ.get("CI") and _service_skips:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if os.environ.get("CI") and _service_skips:
        terminalreporter.write_line(
            f"CI: {len(_service_skips)} test(s) that need a service were skipped:", red=True
        )
        for nodeid in _service_skips:
            terminalreporter.write_line(f"  {nodeid}")
