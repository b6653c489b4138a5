"""System checks, tag ``offchat_notify``. Every id is documented in docs/checks.rst.

Ids are never reused; retired ones stay listed here as reserved:
W001 (reserved: "no MIDDLEWARE list", replaced by E010 before the first release).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.db import connections, router
from django.utils.module_loading import import_string

from . import registry
from .backends import get_backend, load_backend
from .channels import live
from .conf import find_problems, get_settings, new_place, raw_setting, renamed_keys
from .exceptions import NotifyConfigurationError
from .models import Event, Notification
from .roles import get_role_resolver
from .schedule.jobs import check_cron, get_jobs
from .scheduler.lock import lock_configured


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
    conf = get_settings()
    try:
        backend_class = load_backend(conf.backend_path)
    except NotifyConfigurationError as e:
        errors.append(
            checks.Error(
                str(e),
                hint="Set OFFCHAT_NOTIFY['BACKEND'] to 'sync', 'eager', 'dramatiq', 'tasks' or "
                "the dotted path of an offchat_notify.backends.base.BaseBackend subclass.",
                id="offchat_notify.E003",
            )
        )
    else:
        backend_errors = backend_class.check(conf.OPTIONS)
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


def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W003 and the backend's own deploy checks: backends that do not deliver in production."""
    try:
        conf = get_settings()
        backend_class = load_backend(conf.backend_path)
    except NotifyConfigurationError:  # reported by check_settings
        return []
    messages = list(backend_class.check_deploy(conf.OPTIONS))
    if not backend_class.runs_in_worker and not settings.DEBUG:
        messages.append(
            checks.Warning(
                f"OFFCHAT_NOTIFY['BACKEND'] is {conf.BACKEND!r}, which runs every job in the "
                "process that enqueues it, with DEBUG off: every request that notifies pays "
                "for the whole fan-out.",
                hint="Use a worker backend in production ('dramatiq' with manage.py "
                "rundramatiq, or 'tasks' with a Tasks worker).",
                id="offchat_notify.W003",
            )
        )
    return messages


def check_renamed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W008: ``OFFCHAT_NOTIFY`` keys renamed in 0.2, which still work until 0.3."""
    return [
        checks.Warning(
            f"OFFCHAT_NOTIFY[{old!r}] is deprecated and will stop working in 0.3.",
            hint=f"Use {new_place(old)}.",
            id="offchat_notify.W008",
        )
        for old in renamed_keys(raw_setting())
    ]


#: A worker's threads wait this long, at least, for SQLite's write lock.
SQLITE_TIMEOUT = 20


def check_sqlite(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W010: a worker backend on SQLite without the options that make writers wait."""
    try:
        backend_class = load_backend(get_settings().backend_path)
    except Exception:  # reported by check_settings
        return []
    if not backend_class.runs_in_worker:
        return []
    messages: list[checks.CheckMessage] = []
    for alias in sorted({router.db_for_write(m) for m in (Event, Notification)}):
        if connections[alias].vendor != "sqlite":
            continue
        options = connections[alias].settings_dict.get("OPTIONS") or {}
        lacking = []
        if str(options.get("transaction_mode") or "").upper() not in ("IMMEDIATE", "EXCLUSIVE"):
            # DEFERRED: a transaction that reads, then writes, fails at once, without waiting.
            lacking.append('"transaction_mode": "IMMEDIATE"')
        if (
            not isinstance(options.get("timeout"), (int, float))
            or options["timeout"] < SQLITE_TIMEOUT
        ):
            lacking.append(f'a "timeout" of at least {SQLITE_TIMEOUT} s')  # Python's default: 5
        if lacking:
            messages.append(
                checks.Warning(
                    f"Workers write to the SQLite database {alias!r} from several threads and "
                    f"processes at once, and its OPTIONS lack {' and '.join(lacking)}: "
                    "deliveries fail with 'database is locked' and are retried.",
                    hint=f'DATABASES["{alias}"]["OPTIONS"] = {{"transaction_mode": "IMMEDIATE", '
                    f'"timeout": {SQLITE_TIMEOUT}}} (SQLite is for development: one writer at a '
                    "time. Use PostgreSQL in production.)",
                    id="offchat_notify.W010",
                )
            )
    return messages


def check_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E009: registry rules whose model label does not resolve."""
    return [
        checks.Error(
            f"Notification rule {rule.name} is registered for {rule.model!r}, "
            "which is not an installed model.",
            hint=f"Registered at {rule.where}. Use 'app_label.ModelName' of an installed app, "
            "or pass the model class.",
            obj=rule.func,
            id="offchat_notify.E009",
        )
        for rule in registry.default.get_rules()
        if rule.model is not None and registry.default.model_for(rule) is None
    ]


def check_schedule(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E011, E012: periodic jobs whose timing or function is wrong."""
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


def check_scheduler_lock(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W005 (deploy): periodic jobs with no lock to keep a second scheduler idle."""
    try:
        configured = lock_configured()
    except Exception:  # reported by check_settings
        return []
    if not configured:
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


def check_live(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E016, W011: a live transport that cannot work, or that workers cannot reach."""
    try:
        conf = get_settings()
        kind = live.transport()
        backend_class = load_backend(conf.backend_path)
    except Exception:  # reported by check_settings
        return []
    problem = ""
    if kind == live.REDIS and not conf.LIVE_REDIS_URL and live.broker_redis_client() is None:
        problem = "is 'redis', but LIVE_REDIS_URL is not set and the dramatiq broker is not Redis"
    elif kind == live.POSTGRES:
        vendor = connections[router.db_for_write(Notification)].vendor
        if vendor != "postgresql":
            problem = f"is 'postgres', but notifications are written to a {vendor} database"
    if problem:
        return [
            checks.Error(
                f"OFFCHAT_NOTIFY['LIVE'] {problem}: the live stream cannot hear of deliveries.",
                hint="Set LIVE to 'auto', or give LIVE_REDIS_URL; None turns the stream off "
                "(browsers then poll unread/).",
                id="offchat_notify.E016",
            )
        ]
    if kind == live.LOCAL and backend_class.runs_in_worker:
        return [
            checks.Warning(
                f"The live stream's transport is in-process ('local'), but the {conf.BACKEND!r} "
                "backend delivers in worker processes: open streams never hear of deliveries, "
                "and browsers fall back to polling.",
                hint="Use a Redis broker or OFFCHAT_NOTIFY['LIVE_REDIS_URL'], or PostgreSQL "
                "(LIVE 'auto' picks them); or set LIVE to None.",
                id="offchat_notify.W011",
            )
        ]
    return []
