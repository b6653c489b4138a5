"""Settings: defaults, validation, and a cache reset on ``setting_changed``.

This is the only module that reads ``settings.OFFCHAT_NOTIFY``. Everything
else calls :func:`get_settings`, which returns a frozen, validated object.
The same validators feed the system checks (``checks.py``), so a mistake is
reported identically by ``manage.py check`` and at first use.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings as django_settings

from offchat_notify.exceptions import NotifyConfigurationError, NotifyDeprecationWarning

from .defaults import (
    BUILTIN_BACKENDS,
    CHANNEL_NAMES,
    DEFAULTS,
    RENAMED,
    SETTING_NAME,
    _merged,
    new_place,
    renamed_keys,
)
from .problems import Problem, find_problems

__all__ = [
    "BUILTIN_BACKENDS",
    "CHANNEL_NAMES",
    "DEFAULTS",
    "RENAMED",
    "SETTING_NAME",
    "NotifySettings",
    "Problem",
    "backend_options",
    "find_problems",
    "get_settings",
    "new_place",
    "raw_setting",
    "renamed_keys",
    "reset_caches",
    "settings_cache",
]


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
    LIVE: str | None
    LIVE_REDIS_URL: str | None
    LIVE_CHANNEL: str
    STREAM_HEARTBEAT: int | float
    STREAM_MAX_PER_USER: int
    STREAM_REPLAY: int
    MANDATORY_VERBS: list[str]
    CHANNELS_BY_VERB: dict[str, list[str]]
    EMAIL_BATCH_SIZE: int
    EMAIL_RATE_LIMIT: int | float | None
    EMAIL_LANGUAGE: str | None
    EMAIL_SITE_URL: str | None
    EMAIL_UNSUBSCRIBE_DAYS: int
    WEBPUSH_VAPID_PRIVATE_KEY: str | None
    WEBPUSH_VAPID_PUBLIC_KEY: str | None
    WEBPUSH_VAPID_SUBJECT: str | None
    WEBPUSH_TTL: int
    WEBPUSH_BATCH_SIZE: int

    @property
    def backend_path(self) -> str:
        """The dotted path of the backend class, short names expanded."""
        return BUILTIN_BACKENDS.get(self.BACKEND, self.BACKEND)


def raw_setting() -> Any:
    return getattr(django_settings, SETTING_NAME, {})


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
