"""Settings of the offchat-notify example project: a small chat app.

Everything that differs between "just try it" and "with a real worker" comes
from the environment:

REDIS_URL            redis://127.0.0.1:6379/0 to use Redis and a Dramatiq worker.
                     Unset: no broker at all, notifications are delivered in-process.
OFFCHAT_BACKEND      sync, eager or dramatiq. Default: dramatiq when REDIS_URL is
                     set, else sync.
DJANGO_DEBUG         1 (default) or 0.
DJANGO_SECRET_KEY    default: an insecure key, fine for a local demo only.
DJANGO_ALLOWED_HOSTS comma-separated, default 127.0.0.1,localhost.
DRAMATIQ_NAMESPACE   the prefix of dramatiq's Redis keys, default dramatiq.
SQLITE_PATH          the SQLite database file, default example_project/db.sqlite3
                     (run.py --database PATH sets it).
EXAMPLE_EMAIL_DIR    where emails are written, one file each; default
                     example_project/sent_emails (run.py: beside the database).
EXAMPLE_SITE_URL     the site's address for the emails' links (run.py sets it).
EXAMPLE_VAPID_PRIVATE_KEY, EXAMPLE_VAPID_PUBLIC_KEY
                     the VAPID pair of web push (run.py makes one); unset: no push.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import django

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


REDIS_URL = os.environ.get("REDIS_URL", "").strip()


def with_socket_timeouts(url: str) -> str:
    """``url`` with redis-py's socket timeouts added to its query string, unless set.

    A hung Redis then holds a request about a second instead of 5 s or more
    (offchat_notify.W006). dramatiq reads them from the URL only.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    given = {key for key, _value in query}
    for key in ("socket_connect_timeout", "socket_timeout"):
        if key not in given:
            query.append((key, "1"))
    return urlunsplit(parts._replace(query=urlencode(query)))


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-offchat-example-project-local-demo-only"
)
DEBUG = env_flag("DJANGO_DEBUG", True)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dramatiq",
    "offchat_notify",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
# run.py serves the ASGI application with uvicorn: the live inbox stream needs ASGI.
ASGI_APPLICATION = "example.asgi.application"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is enough for the demo. The web server and the worker write to the
# same file, so: WAL (readers do not block the writer), IMMEDIATE transactions
# (no "database is locked" on lock upgrades) and a generous busy timeout.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SQLITE_PATH", "").strip() or BASE_DIR / "db.sqlite3",
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A CSRF failure on offchat-notify's inbox URLs answers JSON, as the rest of its API
# does; any other page keeps Django's.
CSRF_FAILURE_VIEW = "offchat_notify.inbox.http.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# offchat-notify. Switching backend is a settings change only: the views do
# not know which one runs.
NOTIFY_BACKEND = os.environ.get("OFFCHAT_BACKEND", "").strip() or (
    "dramatiq" if REDIS_URL else "sync"
)
VAPID_PRIVATE_KEY = os.environ.get("EXAMPLE_VAPID_PRIVATE_KEY", "").strip()
OFFCHAT_NOTIFY = {
    "BACKEND": NOTIFY_BACKEND,
    # With the dramatiq backend, a request that posts a message hands the broker
    # send to a thread and returns without waiting for Redis. (Options belong to
    # the backend: the sync backend takes none.)
    "OPTIONS": {"DISPATCH": "background"} if NOTIFY_BACKEND == "dramatiq" else {},
    # Read notifications are deleted 30 days after they were created, by the
    # scheduler's nightly retention job.
    "RETENTION_DAYS": 30,
    # Without Redis there is one scheduler (run.py's) and nothing to lock.
    **({} if REDIS_URL else {"SCHEDULER_LOCK_URL": ""}),
    # Where the unsubscribe links of the emails point (run.py sets it).
    "EMAIL_SITE_URL": os.environ.get("EXAMPLE_SITE_URL", "").strip() or "http://127.0.0.1:8000",
    # Besides the inbox: moderators are emailed each flag; with a VAPID key pair
    # (run.py makes one), flags and messages also go out as web push to the
    # browsers that turned it on (Preferences).
    "CHANNELS_BY_VERB": (
        {"message.flagged": ["email", "webpush"], "message.sent": ["webpush"]}
        if VAPID_PRIVATE_KEY
        else {"message.flagged": ["email"]}
    ),
    **(
        {
            "WEBPUSH_VAPID_PRIVATE_KEY": VAPID_PRIVATE_KEY,
            "WEBPUSH_VAPID_PUBLIC_KEY": os.environ.get("EXAMPLE_VAPID_PUBLIC_KEY", "").strip(),
            "WEBPUSH_VAPID_SUBJECT": "mailto:admin@example.com",
        }
        if VAPID_PRIVATE_KEY
        else {}
    ),
}

# Email goes through Django's mail machinery. In this demo each message is a
# file in EXAMPLE_EMAIL_DIR (run.py: beside the database, and it says where);
# a real site sets an SMTP server or a django-anymail provider here.
# Django 6.1 configures this in MAILERS (EMAIL_BACKEND is deprecated there).
_EMAIL_DIR = os.environ.get("EXAMPLE_EMAIL_DIR", "").strip() or str(BASE_DIR / "sent_emails")
if django.VERSION >= (6, 1):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": _EMAIL_DIR},
        }
    }
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = _EMAIL_DIR
DEFAULT_FROM_EMAIL = "chat@example.com"

# The broker django-dramatiq builds. With Redis, offchat-notify's RedisBroker:
# dramatiq's, except that it wakes an idle worker as soon as a message is sent
# (no dramatiq_worker_timeout to tune) and that a message it cannot decode is
# dead-lettered instead of stalling the worker (offchat_notify.W007). Without
# Redis, a StubBroker keeps django-dramatiq happy and nothing is ever sent to
# it (the sync backend delivers in-process). MIDDLEWARE is listed explicitly:
# django-dramatiq's default list names a class that dramatiq 2 removed.
DRAMATIQ_BROKER = {
    "BROKER": (
        "offchat_notify.backends.dramatiq.broker.RedisBroker"
        if REDIS_URL
        else "dramatiq.brokers.stub.StubBroker"
    ),
    "OPTIONS": (
        # DRAMATIQ_NAMESPACE: the prefix of the Redis keys, so that two demos
        # (or a demo and the browser test) can share one Redis server.
        {
            "url": with_socket_timeouts(REDIS_URL),
            "namespace": os.environ.get("DRAMATIQ_NAMESPACE", "dramatiq"),
        }
        if REDIS_URL
        else {}
    ),
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[%(asctime)s] %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        # "Delivered event 3 (message.sent) to 1 recipient(s) in 4 ms." in the
        # server's output (sync) or the worker's (dramatiq).
        "offchat_notify": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
