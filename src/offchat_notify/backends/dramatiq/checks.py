"""The checks of a dramatiq setup: what the backend needs from django-dramatiq.

Run by ``manage.py check`` through :meth:`DramatiqBackend.check` and
:meth:`DramatiqBackend.check_deploy`. Ids are documented in docs/checks.rst.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

#: Middleware the delivery actor cannot be declared without (its options need them).
REQUIRED_MIDDLEWARE = {
    "dramatiq.middleware.Retries": "retry_when, min_backoff, max_backoff",
    "dramatiq.middleware.TimeLimit": "time_limit",
}
#: Middleware workers should have.
DB_MIDDLEWARE = "django_dramatiq.middleware.DbConnectionsMiddleware"

EXAMPLE_BROKER = (
    'DRAMATIQ_BROKER = {"BROKER": "offchat_notify.backends.dramatiq.broker.RedisBroker", '
    '"OPTIONS": {"url": "redis://127.0.0.1:6379/0?socket_connect_timeout=1&socket_timeout=1"}, '
    '"MIDDLEWARE": ['
    '"dramatiq.middleware.AgeLimit", "dramatiq.middleware.TimeLimit", '
    '"dramatiq.middleware.Callbacks", "dramatiq.middleware.Retries", '
    '"django_dramatiq.middleware.DbConnectionsMiddleware"]}'
)


def check_setup(django_settings: Any = settings) -> list[checks.CheckMessage]:
    """E005-E008, E010, W002: what the ``dramatiq`` backend needs from django-dramatiq.

    Everything is reported at once: a project that has not added
    django_dramatiq yet learns what its DRAMATIQ_BROKER must look like before
    adding the app (django-dramatiq fails at startup on a bad one).
    """
    messages: list[checks.CheckMessage] = []
    if not apps.is_installed("django_dramatiq"):
        messages.append(
            checks.Error(
                "The 'dramatiq' backend needs django_dramatiq in INSTALLED_APPS.",
                hint="Add 'django_dramatiq' to INSTALLED_APPS; it builds the broker from "
                "DRAMATIQ_BROKER and provides manage.py rundramatiq.",
                id="offchat_notify.E005",
            )
        )
    broker = getattr(django_settings, "DRAMATIQ_BROKER", None)
    if not isinstance(broker, dict) or "BROKER" not in broker:
        messages.append(
            checks.Error(
                "The 'dramatiq' backend needs a DRAMATIQ_BROKER setting with a BROKER.",
                hint=f"For Redis: {EXAMPLE_BROKER}",
                id="offchat_notify.E006",
            )
        )
        return messages
    try:
        import_string(broker["BROKER"])
    except ImportError as e:
        messages.append(
            checks.Error(
                f"DRAMATIQ_BROKER['BROKER'] {broker['BROKER']!r} does not import: {e}",
                hint='Install the broker\'s extra: pip install "offchat-notify[redis]" or '
                '"offchat-notify[rabbitmq]", and check the dotted path.',
                id="offchat_notify.E007",
            )
        )
    middleware = broker.get("MIDDLEWARE")
    if middleware is None:
        messages.append(
            checks.Error(
                "DRAMATIQ_BROKER has no MIDDLEWARE list, so django-dramatiq builds the broker "
                "with no middleware at all, and the delivery actor cannot be declared "
                "(no retries, no time limit).",
                hint=f"List the middleware explicitly: {EXAMPLE_BROKER}",
                id="offchat_notify.E010",
            )
        )
        return messages
    for path in middleware:
        if not isinstance(path, str):
            continue
        try:
            import_string(path)
        except ImportError:
            hint = "Remove it, or fix the dotted path."
            if path == "dramatiq.middleware.Prometheus":
                hint = (
                    "dramatiq 2 moved it: use 'dramatiq.middleware.prometheus.Prometheus' "
                    "(needs prometheus-client) or drop it. django-dramatiq's default "
                    "MIDDLEWARE list still names the old path, so set MIDDLEWARE explicitly."
                )
            messages.append(
                checks.Error(
                    f"DRAMATIQ_BROKER['MIDDLEWARE'] names {path!r}, which does not import.",
                    hint=hint,
                    id="offchat_notify.E008",
                )
            )
    names = {
        p if isinstance(p, str) else f"{type(p).__module__}.{type(p).__name__}" for p in middleware
    }
    for path, options in REQUIRED_MIDDLEWARE.items():
        if path not in names:
            messages.append(
                checks.Error(
                    f"DRAMATIQ_BROKER['MIDDLEWARE'] lacks {path}, which the delivery actor's "
                    f"options ({options}) need.",
                    hint=f"Add {path!r} to DRAMATIQ_BROKER['MIDDLEWARE'].",
                    id="offchat_notify.E010",
                )
            )
    if DB_MIDDLEWARE not in names:
        messages.append(
            checks.Warning(
                f"DRAMATIQ_BROKER['MIDDLEWARE'] lacks {DB_MIDDLEWARE}: workers would keep "
                "stale database connections.",
                hint=f"Add {DB_MIDDLEWARE!r} to DRAMATIQ_BROKER['MIDDLEWARE'].",
                id="offchat_notify.W002",
            )
        )
    return messages


def check_deploy() -> list[checks.CheckMessage]:
    """W004, W006, W007 (deploy): a broker that cannot deliver, or can stall requests."""
    broker = getattr(settings, "DRAMATIQ_BROKER", None)
    if not isinstance(broker, dict):
        return []
    if broker.get("BROKER") == "dramatiq.brokers.stub.StubBroker":
        return [
            checks.Warning(
                "OFFCHAT_NOTIFY['BACKEND'] is 'dramatiq' on dramatiq's StubBroker, which "
                "keeps messages in memory where no worker process sees them: Events would "
                "stay pending.",
                hint="Point DRAMATIQ_BROKER at Redis or RabbitMQ, or use the 'sync' backend.",
                id="offchat_notify.W004",
            )
        ]
    path = str(broker.get("BROKER", ""))
    if "redis" not in path.lower():
        return []
    messages: list[checks.CheckMessage] = []
    url = str((broker.get("OPTIONS") or {}).get("url") or "")
    if "socket_timeout=" not in url or "socket_connect_timeout=" not in url:
        messages.append(
            checks.Warning(
                "The Redis broker URL sets no socket timeouts: with Redis hung (not down), "
                "each request that notifies waits 5 s or more, and with host/port options "
                "redis-py retries for about a minute.",
                hint="Put the timeouts in the URL's query string (dramatiq ignores them as "
                "OPTIONS keys): redis://HOST:6379/0?socket_connect_timeout=1&socket_timeout=1",
                id="offchat_notify.W006",
            )
        )
    if path == "dramatiq.brokers.redis.RedisBroker":
        messages.append(
            checks.Warning(
                "dramatiq's RedisBroker chokes on a message it cannot decode: the worker "
                "holds it and every message fetched with it until the worker stops.",
                hint="Use offchat_notify.backends.dramatiq.broker.RedisBroker, which "
                "dead-letters such messages and carries on.",
                id="offchat_notify.W007",
            )
        )
    return messages
