"""What run_all.py adds to harness.py: SQLite, RabbitMQ, child processes, memory, users.

- a scratch SQLite file in a temporary directory, removed at the end;
- RabbitMQ queues of the run's own, deleted at the end;
- the settings of a run passed to child processes (the fan-out jobs and the
  ``rundramatiq`` workers) in one environment variable;
- peak resident memory of this process and of others;
- users and groups created set-based, in SQL (a million takes seconds);
- the machine facts the report prints.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
#: The environment variable that carries a run's settings to its child processes.
SETTINGS_ENV = "OFFCHAT_BENCH_SETTINGS"
#: The apps of every process of a run: the chat host and django-notifications-hq.
APPS = ["benchmarks.chat", "notifications"]


# SQLite


@contextmanager
def scratch_sqlite() -> Iterator[str]:
    """Yield the path of a new SQLite file; remove its directory however the run ends."""
    directory = tempfile.mkdtemp(prefix="offchat-bench-")
    try:
        yield os.path.join(directory, "bench.sqlite3")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def sqlite_database(path: str) -> dict[str, Any]:
    """SQLite as Django recommends for concurrent use (WAL, IMMEDIATE transactions).

    The workers of the end-to-end run write from several threads and
    processes; IMMEDIATE and a busy timeout make them wait instead of failing.
    """
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


# RabbitMQ


@contextmanager
def rabbit_queues(url: str, queue: str) -> Iterator[None]:
    """On exit, delete the RabbitMQ queues dramatiq declares for ``queue``."""
    try:
        yield
    finally:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel.queue_delete(name)
        finally:
            connection.close()


def rabbit_version(url: str) -> str:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        # pika keeps the server's connection.start properties on the impl only.
        found = connection._impl.server_properties.get("version", "?")
        return found.decode() if isinstance(found, bytes) else str(found)
    finally:
        connection.close()


# Child processes


def child_env(spec: dict[str, Any] | None, **extra: str) -> dict[str, str]:
    """The environment of a child process that configures Django from ``spec``.

    The repository root goes on PYTHONPATH (for ``benchmarks``), after what is
    already there (run_all.py's copy of the library).
    """
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    if spec is not None:
        env[SETTINGS_ENV] = json.dumps(spec)
    return env


def settings_from_env() -> dict[str, Any]:
    """The Django settings of the run that started this process (see :func:`child_env`)."""
    return harness.django_settings(**json.loads(os.environ[SETTINGS_ENV]))


def configure_from_env() -> None:
    import django
    from django.conf import settings

    settings.configure(**settings_from_env())
    django.setup()


# Memory


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB: VmHWM, its own memory's high-water mark.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's peak into
    it across ``fork``/``vfork`` and ``exec`` (the old memory's high-water mark is
    kept at exec), so a small child of a large parent reports the parent's size.
    Measured here (Python 3.12, Linux 6.18): a ``python -c`` child of a 300 MB parent
    reports ru_maxrss 311 MB and VmHWM 9.6 MB.
    """
    own = peak_rss_of(os.getpid())
    return own if own is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def stop_group(proc: Any) -> None:
    """Stop the process group ``proc`` leads (a worker, a server): SIGTERM, then
    SIGKILL after 30 s; a group already gone is fine."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def peak_rss_of(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another process, MB; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


# Users


def populate(groups: dict[str, int]) -> None:
    """Have ``max(groups.values())`` active users named ``user-<n>``, and the groups, in SQL.

    Group ``name`` holds the first ``size`` of those users in primary-key order.
    A second call adds the users and groups the first did not create (the
    suite grows the population to 1,000,000 only for the fan-out). PostgreSQL
    uses ``generate_series``, SQLite a recursive CTE: no user passes through
    Python.
    """
    from django.contrib.auth.models import Group, User
    from django.db import connection

    users = User.objects.filter(username__startswith="user-")
    have, total = users.count(), max(groups.values())
    columns = (
        "password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and total > have:
            cursor.execute(
                f"INSERT INTO auth_user ({columns}) SELECT '!', false, 'user-' || g, '', '', '', "
                "false, true, now() FROM generate_series(%s, %s) g ORDER BY g",
                [have + 1, total],
            )
        elif total > have:
            cursor.execute(
                "WITH RECURSIVE g(n) AS (SELECT %s UNION ALL SELECT n + 1 FROM g WHERE n < %s) "
                f"INSERT INTO auth_user ({columns}) SELECT '!', 0, 'user-' || n, '', '', '', 0, 1, "
                "datetime('now') FROM g",
                [have + 1, total],
            )
        for name, size in groups.items():
            group, created = Group.objects.get_or_create(name=name)
            if created:
                first = users.order_by("pk").values("id")[:size]
                select, params = first.query.sql_with_params()
                cursor.execute(
                    "INSERT INTO auth_user_groups (user_id, group_id) SELECT first.id, %s "
                    f"FROM ({select}) first",
                    [group.pk, *params],
                )
        cursor.execute("ANALYZE")


# Facts


def machine_facts() -> list[tuple[str, str]]:
    def meminfo(key: str) -> str:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
        return "?"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        ("memory (MemTotal)", meminfo("MemTotal")),
        ("CPU", cpu),
        ("kernel", f"{platform.system()} {platform.release()}"),
    ]


def dist(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
