"""Helpers for tests that need services and worker processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))


def require(service: str, available: bool, how: str) -> None:
    """Skip (laptop) or fail (CI) a test whose service is missing."""
    if available:
        return
    reason = f"{service} is not available: {how}"
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


class WorkerProcess:
    """A real ``manage.py rundramatiq`` worker, in its own process group.

    ``env`` adds environment variables for the worker (for example
    ``REDIS_URL``, ``TEST_OFFCHAT_NOTIFY``; see tests/settings.py). The
    worker's PostgreSQL connections carry ``application_name`` (default
    ``offchat-worker``), so a test can find them in ``pg_stat_activity``.
    """

    def __init__(
        self,
        broker: str,
        database: str,
        log: Path,
        *,
        env: dict[str, str] | None = None,
        threads: int = 2,
        processes: int = 1,
        application_name: str = "offchat-worker",
    ) -> None:
        self.broker = broker
        self.database = database
        self.log_path = log
        self.extra_env = dict(env or {})
        self.threads = threads
        self.processes = processes
        self.application_name = application_name
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TEST_BROKER": self.broker,
            "TEST_REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
            "OFFCHAT_WORKER_DATABASE": self.database,
            "OFFCHAT_DB_APPLICATION_NAME": self.application_name,
            "DATABASE_URL": settings.DATABASE_URL,
            # The repository root (for tests.settings), never src/: workers, like
            # the tests, use the installed package.
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def command(self) -> list[str]:
        """The worker's command line."""
        return [
            sys.executable,
            "-m",
            "django",
            "rundramatiq",
            "--processes",
            str(self.processes),
            "--threads",
            str(self.threads),
            "--path",
            str(ROOT),
            "--skip-logging",
        ]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._reap_group()
        self.log.close()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the whole worker (supervisor and worker processes): no cleanup at all."""
        self.stop(signal.SIGKILL)

    def _reap_group(self) -> None:
        # The forked worker processes share the group; make sure none outlives the test.
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not _group_alive(self.proc.pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Wait until the worker process has declared its actors and consumes."""
        wait_for(
            lambda: "Worker process is ready for action." in self.output(),
            timeout=timeout,
            what="the worker to start",
            on_fail=self.output,
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class DbTaskWorker(WorkerProcess):
    """A real ``manage.py db_worker`` (django-tasks-db), in its own process group.

    It runs the tasks of the Tasks backend ``alias`` (of tests/settings.py's
    ``TASKS``) on ``queue``, polling every 0.1 s. ``env`` as for WorkerProcess.
    """

    def __init__(
        self,
        database: str,
        log: Path,
        *,
        alias: str = "db",
        queue: str = "default",
        env: dict[str, str] | None = None,
        application_name: str = "offchat-db-worker",
    ) -> None:
        super().__init__("stub", database, log, env=env, application_name=application_name)
        self.alias = alias
        self.queue = queue

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "django",
            "db_worker",
            "--backend",
            self.alias,
            "--queue-name",
            self.queue,
            "--interval",
            "0.1",
            "--no-startup-delay",
            "--no-reload",
        ]

    def wait_ready(self, timeout: float = 60) -> DbTaskWorker:
        """Wait until the worker polls its queue."""
        wait_for(
            lambda: "Starting worker" in self.output(),
            timeout=timeout,
            what="the db_worker to start",
            on_fail=self.output,
        )
        return self


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting for init do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    on_fail: Callable[[], str] = lambda: "",
) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}. {on_fail()}")
        time.sleep(0.1)


def broker_middleware() -> list[Any]:
    """The middleware of the test settings' DRAMATIQ_BROKER, as instances."""
    from django_dramatiq.utils import load_middleware

    return [load_middleware(path) for path in settings.DRAMATIQ_BROKER["MIDDLEWARE"]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, for tests that stop it.

    No persistence (``--save "" --appendonly no``): a restart comes back empty,
    as a flushed or replaced Redis would. Never the shared Redis of REDIS_URL.
    """

    BINARY = "redis-server"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.BINARY) is not None

    def url(self, **query: Any) -> str:
        """The server's URL; ``query`` becomes redis-py connection options."""
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return f"redis://127.0.0.1:{self.port}/0" + (f"?{qs}" if qs else "")

    def start(self, timeout: float = 15) -> RedisServer:
        assert self.proc is None, "already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.BINARY,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            self.answers,
            timeout=timeout,
            what=f"redis-server on port {self.port}",
            on_fail=lambda: self.log_path.read_text(errors="replace"),
        )
        return self

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=0.5, retry=None)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGKILL: nothing is saved, clients see the socket close)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None
        wait_for(
            lambda: not port_answers(self.port),
            timeout=10,
            what=f"port {self.port} to close",
        )

    def restart(self) -> RedisServer:
        """Stop and start again on the same port: the server comes back empty."""
        self.stop()
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


def duplicate_rows() -> list[tuple[int, int, int]]:
    """(event_id, recipient_id, count) of every Notification written more than once."""
    from django.db import connection

    from offchat_notify.models import Notification

    table = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, recipient_id, count(*) FROM {table} "
            "GROUP BY event_id, recipient_id HAVING count(*) > 1"
        )
        return list(cursor.fetchall())


def missing_and_extra(
    event_ids: Iterable[int], recipient_ids: Iterable[int]
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Compare the rows of these Events with every Event going to every recipient.

    Returns (missing, extra): expected (event, recipient) pairs with no row,
    and rows that should not exist.
    """
    from offchat_notify.models import Notification

    events = list(event_ids)
    expected = {(e, r) for e in events for r in recipient_ids}
    actual = set(
        Notification.objects.filter(event_id__in=events).values_list("event_id", "recipient_id")
    )
    return expected - actual, actual - expected


def assert_exactly_once(event_ids: Iterable[int], recipient_ids: Iterable[int]) -> None:
    """Every Event has exactly one row per expected recipient: none lost, none twice."""
    events = list(event_ids)
    recipients = list(recipient_ids)
    duplicates = duplicate_rows()
    missing, extra = missing_and_extra(events, recipients)
    assert not duplicates, f"{len(duplicates)} duplicated row(s), e.g. {duplicates[:5]}"
    assert not missing, f"{len(missing)} lost row(s), e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected row(s), e.g. {sorted(extra)[:5]}"


def bulk_users(n: int, *, group: str | None = None) -> list[int]:
    """Create ``n`` active users in one statement (PostgreSQL); return their ids, ascending.

    For audiences of 100,000: much faster than model instances.
    """
    import uuid

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    user_model = get_user_model()
    tag = uuid.uuid4().hex[:8]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {q(user_model._meta.db_table)} "
            "(password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined, role) "
            "SELECT '', false, %s || g, '', '', '', false, true, now(), '' "
            "FROM generate_series(1, %s) AS g RETURNING id",
            [f"bulk-{tag}-", n],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        if group is not None:
            g, _ = Group.objects.get_or_create(name=group)
            through = user_model.groups.through._meta
            cursor.execute(
                f"INSERT INTO {q(through.db_table)} (user_id, group_id) "
                "SELECT unnest(%s::bigint[]), %s",
                [ids, g.pk],
            )
    return ids


def redis_broker_at(url: str) -> Any:
    """The library's Redis broker (tests/settings.py's) at ``url``, in the run's namespace."""
    from offchat_notify.backends.dramatiq.broker import RedisBroker

    return RedisBroker(url=url, namespace=settings.REDIS_NAMESPACE, middleware=broker_middleware())


def relay_until(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    interval: float = 1.0,
    on_fail: Callable[[], str] = lambda: "",
    relayed: list[int] | None = None,
) -> float:
    """Run the relay every ``interval`` seconds until ``condition`` holds; return the seconds taken.

    Stands in for the periodic job that runs the relay in production. The ids
    the relay sent again are appended to ``relayed``, if given.
    """
    from offchat_notify.relay import relay

    started = time.monotonic()
    next_relay = started
    while True:
        now = time.monotonic()
        if now >= next_relay:
            sent = relay()
            if relayed is not None:
                relayed.extend(sent)
            next_relay = now + interval
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}. {on_fail()}")
        time.sleep(0.1)


def worker_env(*, redis_url: str | None = None, **notify_settings: Any) -> dict[str, str]:
    """Environment for WorkerProcess: a Redis URL and OFFCHAT_NOTIFY values for the worker."""
    import json

    env = {"TEST_OFFCHAT_NOTIFY": json.dumps(notify_settings)}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env
