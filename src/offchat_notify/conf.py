"""Settings: defaults, validation, and a cache reset on ``setting_changed``.

This is the only module that reads ``settings.OFFCHAT_NOTIFY``. Everything
else calls :func:`get_settings`, which returns a frozen, validated object.
The same validators feed the system checks (``checks.py``), so a mistake is
reported identically by ``manage.py check`` and at first use.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from typing import Any

from django.conf import settings as django_settings

from .exceptions import NotifyConfigurationError

SETTING_NAME = "OFFCHAT_NOTIFY"

#: The short names of the built-in backends, mapped to their classes.
BUILTIN_BACKENDS = {
    "sync": "offchat_notify.backends.sync.SyncBackend",
    "eager": "offchat_notify.backends.eager.EagerBackend",
    "dramatiq": "offchat_notify.backends.dramatiq.DramatiqBackend",
}

#: What ``ON_BROKER_ERROR`` may say.
BROKER_ERROR_POLICIES = ("defer", "sync", "raise")

#: What ``DISPATCH`` may say: send in the committing thread, or in a thread of its own.
DISPATCH_MODES = ("inline", "background")

#: Every key ``OFFCHAT_NOTIFY`` accepts, with its default.
DEFAULTS: dict[str, Any] = {
    "BACKEND": "dramatiq",
    "QUEUE": "offchat_notify",
    "ROLE_RESOLVER": "offchat_notify.roles.GroupRoles",
    "ROLE_RESOLVER_OPTIONS": {},
    "ADMIN_ROLE": "admin",
    "CHUNK_SIZE": 10_000,
    "ON_BROKER_ERROR": "defer",
    "DISPATCH": "inline",
    "RETENTION_DAYS": None,
    "SCHEDULE": {},
    "RAISE_RULE_ERRORS": False,
    "MAX_ATTEMPTS": 10,
    "RELAY_AFTER": 30,
    "STUCK_AFTER": 15,
    "RELAY_BATCH": 1000,
    "PARALLEL_CHUNK": 50_000,
    "SCHEDULER_LOCK_URL": None,
    "SCHEDULER_LOCK_KEY": "offchat_notify:scheduler",
    "SCHEDULER_LOCK_TTL": 10,
    "SCHEDULER_GRACE": 300,
    "HEALTH_MAX_AGE": 300,
}

# dramatiq's own rule for queue names (dramatiq/actor.py).
_QUEUE_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9._-]*$")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, as a check and an exception report it."""

    id: str
    key: str
    msg: str
    hint: str

    def __str__(self) -> str:
        return f"{SETTING_NAME}[{self.key!r}]: {self.msg} {self.hint}"


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    """The validated ``OFFCHAT_NOTIFY`` setting merged over :data:`DEFAULTS`."""

    BACKEND: str
    QUEUE: str
    ROLE_RESOLVER: str
    ROLE_RESOLVER_OPTIONS: dict[str, Any]
    ADMIN_ROLE: str
    CHUNK_SIZE: int
    ON_BROKER_ERROR: str
    DISPATCH: str
    RETENTION_DAYS: int | None
    SCHEDULE: dict[str, Any]
    RAISE_RULE_ERRORS: bool
    MAX_ATTEMPTS: int
    RELAY_AFTER: int | float
    STUCK_AFTER: int | float
    RELAY_BATCH: int
    PARALLEL_CHUNK: int | None
    SCHEDULER_LOCK_URL: str | None
    SCHEDULER_LOCK_KEY: str
    SCHEDULER_LOCK_TTL: int | float
    SCHEDULER_GRACE: int | float
    HEALTH_MAX_AGE: int | float

    @property
    def backend_path(self) -> str:
        """The dotted path of the backend class, short names expanded."""
        return BUILTIN_BACKENDS.get(self.BACKEND, self.BACKEND)


def raw_setting() -> Any:
    return getattr(django_settings, SETTING_NAME, {})


def find_problems(raw: Any) -> list[Problem]:
    """Return everything wrong with the shape and values of ``raw``.

    Importability of dotted paths is checked separately, by
    ``checks.py``, because importing belongs to the check run, not to here.
    """
    if not isinstance(raw, dict):
        return [
            Problem(
                "offchat_notify.E001",
                "",
                f"must be a dict, not {type(raw).__name__}.",
                'Write OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", ...}.',
            )
        ]
    problems = []
    for key in sorted(set(raw) - set(DEFAULTS), key=str):
        close = difflib.get_close_matches(str(key).upper(), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        problems.append(
            Problem(
                "offchat_notify.E001",
                key,
                "is not a known setting.",
                f"{hint}Known keys: {', '.join(DEFAULTS)}.",
            )
        )
    merged = {**DEFAULTS, **raw}

    def bad(key: str, msg: str, hint: str) -> None:
        problems.append(Problem("offchat_notify.E002", key, msg, hint))

    for key in ("BACKEND", "ROLE_RESOLVER", "ADMIN_ROLE", "QUEUE", "SCHEDULER_LOCK_KEY"):
        if not isinstance(merged[key], str) or not merged[key]:
            bad(
                key,
                f"must be a non-empty string, not {merged[key]!r}.",
                f"Default: {DEFAULTS[key]!r}.",
            )
    if (
        isinstance(merged["QUEUE"], str)
        and merged["QUEUE"]
        and not _QUEUE_NAME_RE.match(merged["QUEUE"])
    ):
        bad(
            "QUEUE",
            f"{merged['QUEUE']!r} is not a valid dramatiq queue name.",
            "Use letters, digits, '.', '_' and '-', starting with a letter or '_'.",
        )
    for key in ("CHUNK_SIZE", "MAX_ATTEMPTS", "RELAY_BATCH"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad(key, f"must be a positive integer, not {value!r}.", f"Default: {DEFAULTS[key]}.")
    parallel = merged["PARALLEL_CHUNK"]
    if parallel is not None and (
        isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1
    ):
        bad(
            "PARALLEL_CHUNK",
            f"must be None or a positive integer, not {parallel!r}.",
            "None delivers every Event in one job; default 50000 recipients per job.",
        )
    lock_url = merged["SCHEDULER_LOCK_URL"]
    if lock_url is not None and not isinstance(lock_url, str):
        bad(
            "SCHEDULER_LOCK_URL",
            f"must be a redis:// URL, '' or None, not {lock_url!r}.",
            "None uses the Redis of DRAMATIQ_BROKER; '' runs the scheduler without a lock.",
        )
    for key in (
        "RELAY_AFTER",
        "STUCK_AFTER",
        "SCHEDULER_LOCK_TTL",
        "SCHEDULER_GRACE",
        "HEALTH_MAX_AGE",
    ):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            bad(
                key,
                f"must be a positive number of seconds, not {value!r}.",
                f"Default: {DEFAULTS[key]}.",
            )
    if merged["ON_BROKER_ERROR"] not in BROKER_ERROR_POLICIES:
        bad(
            "ON_BROKER_ERROR",
            f"must be one of {', '.join(map(repr, BROKER_ERROR_POLICIES))}, "
            f"not {merged['ON_BROKER_ERROR']!r}.",
            "'defer' leaves the Event pending for the relay; 'sync' delivers inline; "
            "'raise' lets the broker error reach the caller.",
        )
    if merged["DISPATCH"] not in DISPATCH_MODES:
        bad(
            "DISPATCH",
            f"must be one of {', '.join(map(repr, DISPATCH_MODES))}, not {merged['DISPATCH']!r}.",
            "'inline' sends to the broker in the committing thread; 'background' in a "
            "thread of its own.",
        )
    elif merged["DISPATCH"] == "background" and merged["ON_BROKER_ERROR"] == "raise":
        bad(
            "DISPATCH",
            "'background' cannot be combined with ON_BROKER_ERROR 'raise': a send in the "
            "background thread has no caller to raise to.",
            "Use ON_BROKER_ERROR 'defer' (the relay sends the Event later) or 'sync', or "
            "DISPATCH 'inline'.",
        )
    days = merged["RETENTION_DAYS"]
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        bad(
            "RETENTION_DAYS",
            f"must be None or a positive integer, not {days!r}.",
            "None keeps notifications forever.",
        )
    if not isinstance(merged["RAISE_RULE_ERRORS"], bool):
        bad(
            "RAISE_RULE_ERRORS",
            f"must be True or False, not {merged['RAISE_RULE_ERRORS']!r}.",
            "Default: False.",
        )
    for key in ("ROLE_RESOLVER_OPTIONS", "SCHEDULE"):
        if not isinstance(merged[key], dict):
            bad(key, f"must be a dict, not {type(merged[key]).__name__}.", "Default: {}.")
    return problems


@functools.cache
def get_settings() -> NotifySettings:
    """Return the validated settings, cached until ``OFFCHAT_NOTIFY`` changes.

    Raises:
        NotifyConfigurationError: the setting has an unknown key or a bad value.
    """
    raw = raw_setting()
    problems = find_problems(raw)
    if problems:
        raise NotifyConfigurationError(str(problems[0]))
    return NotifySettings(**{**DEFAULTS, **raw})


def reset_caches(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget everything derived from the settings."""
    if setting not in (SETTING_NAME, "AUTH_USER_MODEL", "DRAMATIQ_BROKER"):
        return
    get_settings.cache_clear()
    from . import backends, roles

    backends.get_backend.cache_clear()
    roles.get_role_resolver.cache_clear()
