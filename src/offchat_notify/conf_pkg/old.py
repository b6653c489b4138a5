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
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings as django_settings

from .exceptions import NotifyConfigurationError, NotifyDeprecationWarning

SETTING_NAME = "OFFCHAT_NOTIFY"

#: The short names of the built-in backends, mapped to their classes.
BUILTIN_BACKENDS = {
    "sync": "offchat_notify.backends.sync.SyncBackend",
    "eager": "offchat_notify.backends.eager.EagerBackend",
    "dramatiq": "offchat_notify.backends.dramatiq.DramatiqBackend",
    "tasks": "offchat_notify.backends.tasks.TasksBackend",
}

#: Every key ``OFFCHAT_NOTIFY`` accepts, with its default.
DEFAULTS: dict[str, Any] = {
    "BACKEND": "dramatiq",
    "OPTIONS": {},
    "ROLE_RESOLVER": "offchat_notify.roles.GroupRoles",
    "ROLE_RESOLVER_OPTIONS": {},
    "ADMIN_ROLE": "admin",
    "PAGE_SIZE": 10_000,
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

# Removed in 0.3: keys renamed in 0.2. Each still works, with a
# NotifyDeprecationWarning and the check offchat_notify.W008 naming its new place.
#: Old key -> (new top-level key, or None: a key of OPTIONS by the same name).
RENAMED: dict[str, str | None] = {
    "CHUNK_SIZE": "PAGE_SIZE",
    "QUEUE": None,
    "DISPATCH": None,
    "ON_BROKER_ERROR": None,
}


def new_place(old: str) -> str:
    """Where a renamed key lives now, as a user writes it."""
    new = RENAMED[old]
    return f"OFFCHAT_NOTIFY[{new!r}]" if new else f"OFFCHAT_NOTIFY['OPTIONS'][{old!r}]"


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
    OPTIONS: dict[str, Any]
    ROLE_RESOLVER: str
    ROLE_RESOLVER_OPTIONS: dict[str, Any]
    ADMIN_ROLE: str
    PAGE_SIZE: int
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
    for key in sorted(set(raw) - set(DEFAULTS) - set(RENAMED), key=str):
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
    merged = _merged(raw)

    def bad(key: str, msg: str, hint: str) -> None:
        problems.append(Problem("offchat_notify.E002", key, msg, hint))

    for key in ("BACKEND", "ROLE_RESOLVER", "ADMIN_ROLE", "SCHEDULER_LOCK_KEY"):
        if not isinstance(merged[key], str) or not merged[key]:
            bad(
                key,
                f"must be a non-empty string, not {merged[key]!r}.",
                f"Default: {DEFAULTS[key]!r}.",
            )
    for key in ("PAGE_SIZE", "MAX_ATTEMPTS", "RELAY_BATCH"):
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
    for key in ("OPTIONS", "ROLE_RESOLVER_OPTIONS", "SCHEDULE"):
        if not isinstance(merged[key], dict):
            bad(key, f"must be a dict, not {type(merged[key]).__name__}.", "Default: {}.")
    return problems


def _merged(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` over the defaults, renamed keys moved to their new places (a value
    given at the new place wins)."""
    merged = {**DEFAULTS, **{k: v for k, v in raw.items() if k not in RENAMED}}
    options = merged["OPTIONS"]
    for old, new in RENAMED.items():
        if old not in raw:
            continue
        if new is not None:
            merged[new] = raw.get(new, raw[old])
        elif isinstance(options, dict):
            options = {old: raw[old], **options}
    merged["OPTIONS"] = options
    return merged


def backend_options(accepted: Any) -> dict[str, Any]:
    """``OPTIONS`` for a backend that accepts the keys ``accepted``.

    Top-level keys renamed into ``OPTIONS`` (``QUEUE``, ``DISPATCH``,
    ``ON_BROKER_ERROR``) were accepted with any backend, so they are passed on
    only to a backend that takes them.
    """
    raw = raw_setting()
    given = raw.get("OPTIONS") or {} if isinstance(raw, dict) else {}
    return {
        key: value
        for key, value in get_settings().OPTIONS.items()
        if key in accepted or key in given or key not in RENAMED
    }


def renamed_keys(raw: Any) -> list[str]:
    """The renamed keys ``raw`` still uses."""
    return [key for key in RENAMED if isinstance(raw, dict) and key in raw]


_F = TypeVar("_F", bound=Callable[..., Any])
_caches: list[Callable[[], None]] = []


def settings_cache(func: _F) -> _F:
    """``functools.cache``, cleared whenever the settings it derives from change.

    Every module that caches something built from the settings (the backend,
    the role resolver) caches it through this, so :func:`reset_caches` clears
    them all without this module importing theirs.
    """
    cached = functools.cache(func)
    _caches.append(cached.cache_clear)
    return cached  # type: ignore[return-value]


@settings_cache
def get_settings() -> NotifySettings:
    """Return the validated settings, cached until ``OFFCHAT_NOTIFY`` changes.

    Raises:
        NotifyConfigurationError: the setting has an unknown key or a bad value.
    """
    raw = raw_setting()
    problems = find_problems(raw)
    if problems:
        raise NotifyConfigurationError(str(problems[0]))
    for old in renamed_keys(raw):
        warnings.warn(
            f"OFFCHAT_NOTIFY[{old!r}] is deprecated and will stop working in 0.3; "
            f"use {new_place(old)}.",
            NotifyDeprecationWarning,
            stacklevel=2,
        )
    return NotifySettings(**_merged(raw))


def reset_caches(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget everything derived from the settings."""
    if setting in (SETTING_NAME, "AUTH_USER_MODEL", "DRAMATIQ_BROKER", "TASKS"):
        for clear in _caches:
            clear()
