"""Plumbing shared by the benchmarks.

- a scratch PostgreSQL database, created for the run and dropped after it,
  so a benchmark never reads or writes anyone else's data;
- a Redis key namespace of the run's own, whose keys are deleted at the end
  (never FLUSHDB / FLUSHALL: the server is shared);
- Django configured in-process, on that database and that namespace;
- the statistics the reports print.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: Written on the scratch database when it is created. A database of the same
#: name without this comment is someone else's, and is never dropped.
SCRATCH_COMMENT = "offchat-notify benchmark scratch database, safe to drop"

#: As in tests/settings.py: django-dramatiq's default list names a class that
#: dramatiq 2 removed, so the list is always explicit (DESIGN.md section 4).
BROKER_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]


# PostgreSQL


@dataclass(frozen=True)
class Postgres:
    """The server named by a ``postgres://USER[:PASSWORD]@HOST:PORT/DBNAME`` URL.

    DBNAME is only used to connect to the server to create and drop the
    scratch database; nothing is written to it.
    """

    host: str
    port: int
    user: str
    password: str
    maintenance_db: str

    @classmethod
    def from_url(cls, url: str) -> Postgres:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise SystemExit(f"--database-url must be a postgres:// URL, not {url!r}.")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            maintenance_db=parts.path.lstrip("/") or "postgres",
        )

    def connect(self, dbname: str) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=dbname,
            autocommit=True,
        )

    def django_database(self, name: str) -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": self.host,
            "PORT": str(self.port),
        }


@contextmanager
def scratch_database(pg: Postgres, name: str) -> Iterator[str]:
    """Create the database ``name``, yield it, and drop it however the run ends.

    A leftover of an interrupted run (recognised by its comment) is dropped
    first; any other database of that name is left alone and the run stops.
    """
    from psycopg import sql

    if name == pg.maintenance_db:
        raise SystemExit(f"The scratch database must not be {name!r}, the one in the URL.")
    ident = sql.Identifier(name)
    with pg.connect(pg.maintenance_db) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
        if row is not None:
            if row[0] != SCRATCH_COMMENT:
                raise SystemExit(
                    f"Database {name!r} exists and was not made by a benchmark; not touching "
                    "it. Choose another name with --scratch-db."
                )
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(SCRATCH_COMMENT))
        )
    try:
        yield name
    finally:
        _close_django_connections()
        with pg.connect(pg.maintenance_db) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def _close_django_connections() -> None:
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()


# Redis


@contextmanager
def redis_namespace(url: str, namespace: str) -> Iterator[Any]:
    """Yield a client; on exit delete every key under ``namespace:`` (and only those)."""
    import redis

    client = redis.Redis.from_url(url)
    pattern = f"{namespace}:*"
    if next(client.scan_iter(match=pattern, count=1000), None) is not None:
        raise SystemExit(f"Redis already holds keys under {pattern!r}; choose another namespace.")
    try:
        yield client
    finally:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        client.close()


@contextmanager
def counting_redis_commands(client: Any) -> Iterator[list[str]]:
    """Record the name of every command ``client`` sends inside the block."""
    sent: list[str] = []
    original = client.execute_command

    def execute_command(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return original(*args, **options)

    client.execute_command = execute_command
    try:
        yield sent
    finally:
        del client.execute_command


# Django


def django_settings(
    *,
    database: dict[str, Any],
    redis_url: str,
    namespace: str,
    apps: Sequence[str],
    broker: str = "dramatiq.brokers.redis.RedisBroker",
    notify: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The benchmarks' Django settings, as keyword arguments of ``settings.configure``.

    ``extra`` adds or replaces settings. Worker processes load the same dict
    through a settings module (benchmarks/worker_settings.py).
    """
    return {
        "DEBUG": False,
        "SECRET_KEY": "offchat-notify-benchmarks",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_dramatiq",
            "offchat_notify",
            *apps,
        ],
        "DATABASES": {"default": database},
        "DRAMATIQ_BROKER": {
            "BROKER": broker,
            "OPTIONS": {"url": redis_url, "namespace": namespace},
            "MIDDLEWARE": BROKER_MIDDLEWARE,
        },
        "OFFCHAT_NOTIFY": notify or {"BACKEND": "dramatiq"},
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"console": {"class": "logging.StreamHandler"}},
            "loggers": {"offchat_notify": {"handlers": ["console"], "level": "WARNING"}},
        },
        **extra,
    }


def configure_django(**options: Any) -> None:
    """``settings.configure`` with :func:`django_settings` (same arguments), then setup."""
    import django
    from django.conf import settings

    settings.configure(**django_settings(**options))
    django.setup()


def versions(redis_client: Any) -> list[tuple[str, str]]:
    """What ran: interpreter, libraries, servers and the CPUs this process may use."""
    from django.db import connection

    def dist(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            database = ("PostgreSQL server", cursor.fetchone()[0])
    else:
        database = (connection.display_name, connection.Database.sqlite_version)
    try:
        cpus = len(os.sched_getaffinity(0))  # what nproc prints
    except AttributeError:
        cpus = os.cpu_count() or 0
    return [
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Django", dist("django")),
        ("dramatiq", dist("dramatiq")),
        ("django-dramatiq", dist("django-dramatiq")),
        ("offchat-notify", dist("offchat-notify")),
        ("psycopg", dist("psycopg")),
        ("redis-py", dist("redis")),
        database,
        ("Redis server", redis_client.info("server")["redis_version"]),
        ("nproc", str(cpus)),
    ]


# Statistics


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 < q < 1), linear interpolation between order statistics."""
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ratio_interval(
    top: Sequence[float], bottom: Sequence[float], rng: random.Random, rounds: int = 1000
) -> tuple[float, float]:
    """A 95% bootstrap interval for median(top) / median(bottom)."""
    ratios = []
    for _ in range(rounds):
        a = statistics.median(rng.choices(top, k=len(top)))
        b = statistics.median(rng.choices(bottom, k=len(bottom)))
        ratios.append(a / b)
    return quantile(ratios, 0.025), quantile(ratios, 0.975)
