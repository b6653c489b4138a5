"""System checks, tag ``offchat_notify``. Every id is documented in docs/checks.rst.

Ids are never reused; retired ones stay listed here as reserved:
W001 (reserved: "no MIDDLEWARE list", replaced by E010 before the first release).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import find_problems, get_settings, raw_setting

#: Middleware the delivery actor cannot be declared without (its options need them).
REQUIRED_MIDDLEWARE = {
    "dramatiq.middleware.Retries": "retry_when, min_backoff, max_backoff",
    "dramatiq.middleware.TimeLimit": "time_limit",
}
#: Middleware workers should have.
DB_MIDDLEWARE = "django_dramatiq.middleware.DbConnectionsMiddleware"

EXAMPLE_BROKER = (
    'DRAMATIQ_BROKER = {"BROKER": "offchat_notify.brokers.RedisBroker", '
    '"OPTIONS": {"url": "redis://127.0.0.1:6379/0?socket_connect_timeout=1&socket_timeout=1"}, '
    '"MIDDLEWARE": ['
    '"dramatiq.middleware.AgeLimit", "dramatiq.middleware.TimeLimit", '
    '"dramatiq.middleware.Callbacks", "dramatiq.middleware.Retries", '
    '"django_dramatiq.middleware.DbConnectionsMiddleware"]}'
)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001-E004: the ``OFFCHAT_NOTIFY`` setting, its backend and its role resolver."""
    problems = find_problems(raw_setting())
    errors: list[checks.CheckMessage] = [
        checks.Error(
            f"OFFCHAT_NOTIFY[{p.key!r}] {p.msg}" if p.key else f"OFFCHAT_NOTIFY {p.msg}",
            hint=p.hint,
            id=p.id,
        )
        for p in problems
    ]
    if errors:
        return errors
    from .backends import get_backend, load_backend
    from .exceptions import NotifyConfigurationError
    from .roles import get_role_resolver

    try:
        backend_class = load_backend(get_settings().backend_path)
    except NotifyConfigurationError as e:
        errors.append(
            checks.Error(
                str(e),
                hint="Set OFFCHAT_NOTIFY['BACKEND'] to 'sync', 'eager', 'dramatiq' or the "
                "dotted path of an offchat_notify.backends.base.BaseBackend subclass.",
                id="offchat_notify.E003",
            )
        )
    else:
        backend_errors = backend_class.check()
        errors.extend(backend_errors)
        if not any(m.is_serious() for m in backend_errors):
            try:
                get_backend()
            except NotifyConfigurationError as e:
                errors.append(checks.Error(str(e), id="offchat_notify.E003"))
    try:
        get_role_resolver()
    except NotifyConfigurationError as e:
        errors.append(
            checks.Error(
                str(e),
                hint="Use offchat_notify.roles.GroupRoles, FieldRoles or FlagRoles, or the "
                "dotted path of an offchat_notify.roles.BaseRoles subclass.",
                id="offchat_notify.E004",
            )
        )
    return errors


def check_dramatiq_setup(django_settings: Any) -> list[checks.CheckMessage]:
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


def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W003, W004 (deploy): backends that do not deliver in production."""
    try:
        backend = get_settings().BACKEND
    except Exception:  # reported by check_settings
        return []
    broker = getattr(settings, "DRAMATIQ_BROKER", None)
    if (
        backend == "dramatiq"
        and isinstance(broker, dict)
        and broker.get("BROKER") == "dramatiq.brokers.stub.StubBroker"
    ):
        return [
            checks.Warning(
                "OFFCHAT_NOTIFY['BACKEND'] is 'dramatiq' on dramatiq's StubBroker, which "
                "keeps messages in memory where no worker process sees them: Events would "
                "stay pending.",
                hint="Point DRAMATIQ_BROKER at Redis or RabbitMQ, or use the 'sync' backend.",
                id="offchat_notify.W004",
            )
        ]
    if backend in ("sync", "eager") and not settings.DEBUG:
        return [
            checks.Warning(
                f"OFFCHAT_NOTIFY['BACKEND'] is {backend!r} with DEBUG off: every request "
                "that notifies pays for the whole fan-out.",
                hint="Use the 'dramatiq' backend in production and run manage.py rundramatiq.",
                id="offchat_notify.W003",
            )
        ]
    return []


def check_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E009: registry rules whose model label does not resolve."""
    from .registry import default as registry

    return [
        checks.Error(
            f"Notification rule {rule.name} is registered for {rule.model!r}, "
            "which is not an installed model.",
            hint=f"Registered at {rule.where}. Use 'app_label.ModelName' of an installed app, "
            "or pass the model class.",
            obj=rule.func,
            id="offchat_notify.E009",
        )
        for rule in registry.get_rules()
        if rule.model is not None and registry.model_for(rule) is None
    ]


def check_schedule(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E011, E012: periodic jobs whose timing or function is wrong."""
    from .exceptions import NotifyConfigurationError
    from .scheduler import check_cron, get_jobs

    try:
        jobs = get_jobs()
    except NotifyConfigurationError as e:
        return [
            checks.Error(
                str(e),
                hint="Each SCHEDULE entry is None (disabled) or a dict with 'task' (for your own "
                "jobs) and one of 'cron' and 'every'.",
                id="offchat_notify.E011",
            )
        ]
    except Exception:  # reported by check_settings
        return []
    errors: list[checks.CheckMessage] = []
    for name, job in sorted(jobs.items()):
        if job.cron is not None:
            try:
                check_cron(job.cron)
            except ImportError:
                return [
                    checks.Error(
                        "Periodic jobs with a cron schedule need APScheduler.",
                        hint='pip install "offchat-notify[scheduler]"',
                        id="offchat_notify.E011",
                    )
                ]
            except ValueError as e:
                errors.append(
                    checks.Error(
                        f"Periodic job {name!r} has an invalid cron schedule: {e}",
                        hint="Five fields: minute hour day-of-month month day-of-week, "
                        "for example '*/5 * * * *' or '0 9 * * mon-fri'.",
                        id="offchat_notify.E011",
                    )
                )
        try:
            task = import_string(job.task)
        except ImportError as e:
            problem = f"which does not import: {e}"
        else:
            problem = "" if callable(task) else f"which is a {type(task).__name__}, not a function"
        if problem:
            errors.append(
                checks.Error(
                    f"Periodic job {name!r} names {job.task!r}, {problem}",
                    hint="Use the dotted path of a function that takes no arguments.",
                    id="offchat_notify.E012",
                )
            )
    return errors


def check_broker_for_production(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W006, W007 (deploy): a Redis broker that can stall requests or workers."""
    try:
        backend = get_settings().BACKEND
    except Exception:  # reported by check_settings
        return []
    broker = getattr(settings, "DRAMATIQ_BROKER", None)
    if backend != "dramatiq" or not isinstance(broker, dict):
        return []
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
                hint="Use offchat_notify.brokers.RedisBroker, which dead-letters such messages "
                "and carries on.",
                id="offchat_notify.W007",
            )
        )
    return messages


def check_scheduler_lock(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W005 (deploy): periodic jobs with no lock to keep a second scheduler idle."""
    from .leader import lock_url

    try:
        url = lock_url()
    except Exception:  # reported by check_settings
        return []
    if url is None:
        return [
            checks.Warning(
                "The scheduler has no Redis lock: two notify_scheduler processes would both "
                "run every periodic job.",
                hint="Run exactly one notify_scheduler, or set "
                "OFFCHAT_NOTIFY['SCHEDULER_LOCK_URL'] to a Redis URL (a Redis DRAMATIQ_BROKER "
                "is used by default).",
                id="offchat_notify.W005",
            )
        ]
    return []
