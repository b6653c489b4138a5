"""Settings for the test suite. Service addresses come from the environment.

DATABASE_URL  postgres://USER@HOST:PORT/NAME, or sqlite:///PATH (default: PostgreSQL
              at 127.0.0.1:5432/test when it answers, else an SQLite file)
REDIS_URL     redis://127.0.0.1:6379/0
RABBITMQ_URL  amqp://guest:guest@127.0.0.1:5672/%2F
TEST_BROKER   stub (default), redis or rabbitmq: the broker django-dramatiq builds

Hooks for the worker processes the tests start (tests/helpers.py, WorkerProcess):

OFFCHAT_WORKER_DATABASE      the database to use as is (the test database)
OFFCHAT_DB_APPLICATION_NAME  PostgreSQL application_name of the connections
TEST_OFFCHAT_NOTIFY          JSON object merged into OFFCHAT_NOTIFY
TEST_CONN_MAX_AGE            CONN_MAX_AGE of the database, in seconds, or "none"
TEST_DB_OPTIONS              JSON object merged into the database's OPTIONS
TEST_LOG_LEVELS              any value: log lines start with their level name
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from importlib.util import find_spec
from urllib.parse import unquote, urlsplit

import django

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/test"
#: Redis keys of this run live under this prefix, so runs do not see each other.
REDIS_NAMESPACE = os.environ.get("TEST_REDIS_NAMESPACE", f"offchat-test-{os.getpid()}")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _database(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path[1:] or os.path.join(tempfile.gettempdir(), "offchat.db"),
        }
    if parts.scheme in ("postgres", "postgresql"):
        name = parts.path.lstrip("/") or "test"
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or "postgres"),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
            # The worker processes started by the tests connect to the test database.
            "TEST": {"NAME": os.environ.get("TEST_DATABASE_NAME") or f"test_{name}"},
        }
    raise ValueError(f"Unsupported DATABASE_URL scheme: {url!r}")


DATABASE_URL = os.environ.get("DATABASE_URL") or (
    DEFAULT_POSTGRES if _answers("127.0.0.1", 5432) else "sqlite://"
)
DATABASES = {"default": _database(DATABASE_URL)}
if os.environ.get("OFFCHAT_WORKER_DATABASE"):
    # A worker process started by a test: use the test database directly.
    DATABASES["default"]["NAME"] = os.environ["OFFCHAT_WORKER_DATABASE"]
if os.environ.get("TEST_CONN_MAX_AGE"):
    # Persistent connections, as many production sites run workers ("none": forever).
    _age = os.environ["TEST_CONN_MAX_AGE"]
    DATABASES["default"]["CONN_MAX_AGE"] = None if _age == "none" else int(_age)
if os.environ.get("OFFCHAT_DB_APPLICATION_NAME") and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["OPTIONS"] = {
        "application_name": os.environ["OFFCHAT_DB_APPLICATION_NAME"]
    }
if os.environ.get("TEST_DB_OPTIONS"):
    # A JSON object merged into the database's OPTIONS (SQLite's transaction_mode, timeout).
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        **json.loads(os.environ["TEST_DB_OPTIONS"]),
    }

_BROKERS = {
    "stub": {"BROKER": "dramatiq.brokers.stub.StubBroker", "OPTIONS": {}},
    "redis": {
        # dramatiq's Redis broker, with a consumer that dead-letters undecodable messages.
        "BROKER": "offchat_notify.backends.dramatiq.broker.RedisBroker",
        "OPTIONS": {"url": REDIS_URL, "namespace": REDIS_NAMESPACE},
    },
    "rabbitmq": {
        "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
        "OPTIONS": {"url": RABBITMQ_URL},
    },
}
DRAMATIQ_BROKER = {
    **_BROKERS[os.environ.get("TEST_BROKER", "stub")],
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}

SECRET_KEY = "offchat-notify-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "testapp.User"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_dramatiq",
    "offchat_notify",
    "tests.testapp",
]

# Django's Tasks framework, for the "tasks" backend: django.tasks (Django 6.0+), else
# the django-tasks backport; and django-tasks-db's database backend, whose worker the
# integration tests run. Each only where installed, so the suite runs without them.
TASKS_FRAMEWORK = next((name for name in ("django.tasks", "django_tasks") if find_spec(name)), None)
if TASKS_FRAMEWORK is not None:
    TASKS = {"default": {"BACKEND": f"{TASKS_FRAMEWORK}.backends.immediate.ImmediateBackend"}}
    if TASKS_FRAMEWORK == "django_tasks":
        INSTALLED_APPS.insert(INSTALLED_APPS.index("offchat_notify"), "django_tasks")
    if find_spec("django_tasks_db"):
        INSTALLED_APPS.insert(INSTALLED_APPS.index("offchat_notify"), "django_tasks_db")
        # No QUEUES list: any queue, so each worker test can use a queue of its own.
        TASKS["db"] = {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
OFFCHAT_NOTIFY = {"BACKEND": "sync", **json.loads(os.environ.get("TEST_OFFCHAT_NOTIFY", "{}"))}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"offchat_notify": {"handlers": ["console"], "level": "WARNING"}},
}
if os.environ.get("OFFCHAT_WORKER_DATABASE"):
    # Worker processes log dramatiq's INFO lines too ("Worker process is ready for action.").
    LOGGING["loggers"]["dramatiq"] = {"handlers": ["console"], "level": "INFO"}
if os.environ.get("TEST_LOG_LEVELS"):
    # Each line starts with its level, so a test can look for ERROR lines.
    LOGGING["formatters"] = {"levels": {"format": "%(levelname)s %(name)s: %(message)s"}}
    LOGGING["handlers"]["console"]["formatter"] = "levels"
# Email: Django 6.1 configures mailers in MAILERS (EMAIL_BACKEND and its
# friends are deprecated there); older versions read EMAIL_BACKEND.
_MAILER = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend", "OPTIONS": {}}
if os.environ.get("TEST_EMAIL_PORT"):
    # Worker processes of the email tests send to the SMTP server the test runs.
    _MAILER = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": int(os.environ["TEST_EMAIL_PORT"]), "timeout": 10},
    }
if django.VERSION >= (6, 1):
    MAILERS = {"default": _MAILER}
else:
    EMAIL_BACKEND = _MAILER["BACKEND"]
    if os.environ.get("TEST_EMAIL_PORT"):
        EMAIL_HOST = "127.0.0.1"
        EMAIL_PORT = int(os.environ["TEST_EMAIL_PORT"])
        EMAIL_TIMEOUT = 10
