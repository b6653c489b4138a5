"""live_stream.py's server side: settings, logins, the uvicorn process, what it costs.

- :func:`spec`: the run's Django settings (those of harness.django_settings,
  plus sessions, the usual middleware and the inbox URLs), shared by the
  benchmark process, the web process and the worker;
- :func:`web_spec`: the same, with a bounded pool of database connections;
- :func:`log_in`: a session per user, written to the database as a login
  writes it; the clients send its key as the ``sessionid`` cookie;
- :class:`WebServer`: ``uvicorn benchmarks.live_asgi:application --host
  127.0.0.1 --port P``, default settings, one process, in a process group of
  its own; its RSS, CPU seconds, database connections;
- :func:`db_counters`: the scratch database's committed transactions and new
  sessions (``pg_stat_database``), the load polling puts on it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import services

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def spec(database: dict[str, Any], redis_url: str, namespace: str, broker: str) -> dict[str, Any]:
    """The keyword arguments of harness.django_settings for every process of the run.

    The live channel is the run's own (``<namespace>:live``), so nothing else
    publishing on the same Redis reaches the web process. ``LIVE`` stays
    ``"auto"``: Redis pub/sub, since the broker is Redis.
    """
    return {
        "database": database,
        "redis_url": redis_url,
        "namespace": namespace,
        "apps": ["django.contrib.sessions", "benchmarks.chat"],
        "broker": broker,
        "notify": {
            "BACKEND": "dramatiq",
            "OPTIONS": {"QUEUE": namespace},
            "LIVE": "auto",
            "LIVE_CHANNEL": f"{namespace}:live",
        },
        "MIDDLEWARE": MIDDLEWARE,
        "ROOT_URLCONF": "benchmarks.live_urls",
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"console": {"class": "logging.StreamHandler"}},
            "loggers": {
                "offchat_notify": {"handlers": ["console"], "level": "WARNING"},
                # A 500's traceback goes to the web process's log (DEBUG is off).
                "django.request": {"handlers": ["console"], "level": "ERROR"},
            },
        },
    }


def web_spec(run_spec: dict[str, Any], pool: int) -> dict[str, Any]:
    """The web process's settings: the run's, with a pool of at most ``pool``
    database connections (Django's ``OPTIONS["pool"]``, psycopg_pool); 0: none.

    Without a pool, Django under ASGI opens a connection per request in its
    own thread: 1,000 clients polling every 5 s overload one process, its
    concurrent requests pass PostgreSQL's ``max_connections`` and fail, and
    other users of the server fail with them.
    """
    if not pool:
        return run_spec
    database = {**run_spec["database"], "OPTIONS": {"pool": {"min_size": 1, "max_size": pool}}}
    return {**run_spec, "database": database}


def log_in(user_ids: list[int]) -> dict[int, str]:
    """A database session for each user, as ``django.contrib.auth.login`` stores it."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    expires = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    store = SessionStore()
    keys, rows = {}, []
    for user in User.objects.filter(pk__in=user_ids):
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
        keys[user.pk] = key
    Session.objects.bulk_create(rows, batch_size=1000)
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebServer:
    """One uvicorn process serving the run's ASGI application, stopped on exit."""

    host = "127.0.0.1"

    def __init__(self, run_spec: dict[str, Any], log: Path) -> None:
        self.spec, self.log_path, self.port = run_spec, log, free_port()

    def command(self) -> list[str]:
        uvicorn = Path(sys.executable).with_name("uvicorn")
        return [
            str(uvicorn),
            "benchmarks.live_asgi:application",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def __enter__(self) -> WebServer:
        import psutil

        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            self.command(),
            cwd=services.ROOT,
            env=services.child_env(self.spec),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            self.check_alive()
            try:
                urllib.request.urlopen(f"{self.url}/notifications/unread/", timeout=5)
            except urllib.error.HTTPError:
                break  # 401 to an anonymous request: the app is up
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not answer within 60 s") from None
                time.sleep(0.2)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __exit__(self, *exc: object) -> None:
        services.stop_group(self.proc)
        self.log.close()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"uvicorn exited ({self.proc.returncode}):\n{tail}")

    def rss_mb(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def database_connections(self) -> int:
        """The web process's open TCP connections to PostgreSQL."""
        port = int(self.spec["database"]["PORT"])
        return sum(
            1
            for c in self.ps.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
        )

    def idle(self, seconds: float) -> dict[str, float]:
        """CPU seconds the process used over ``seconds`` of wall time, and their share."""
        cpu0, t0 = self.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        cpu, wall = self.cpu_seconds() - cpu0, time.perf_counter() - t0
        return {"seconds": wall, "cpu_s": cpu, "cpu_pct": 100 * cpu / wall}


def db_counters() -> dict[str, int]:
    """The scratch database's committed transactions and sessions opened so far."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        commits, sessions = cursor.fetchone()
    return {"xact_commit": int(commits), "sessions": int(sessions)}


def redis_subscribers(client: Any, channel: str) -> int:
    """How many connections are subscribed to ``channel`` (PUBSUB NUMSUB)."""
    return int(dict(client.pubsub_numsub(channel)).get(channel.encode(), 0))
