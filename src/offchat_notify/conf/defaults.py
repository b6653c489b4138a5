"""``OFFCHAT_NOTIFY``'s keys: their defaults, bounds, and the keys renamed in 0.2."""

from __future__ import annotations

from typing import Any

SETTING_NAME = "OFFCHAT_NOTIFY"

#: The short names of the built-in backends, mapped to their classes.
BUILTIN_BACKENDS = {
    "sync": "offchat_notify.backends.sync.SyncBackend",
    "eager": "offchat_notify.backends.eager.EagerBackend",
    "dramatiq": "offchat_notify.backends.dramatiq.backend.DramatiqBackend",
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
    "LIVE": "auto",
    "LIVE_REDIS_URL": None,
    "LIVE_CHANNEL": "offchat_notify:live",
    "STREAM_HEARTBEAT": 15,
    "STREAM_MAX_PER_USER": 5,
    "STREAM_REPLAY": 100,
    "MANDATORY_VERBS": [],
    "CHANNELS_BY_VERB": {},
    "EMAIL_BATCH_SIZE": 500,
    "EMAIL_RATE_LIMIT": None,
    "EMAIL_LANGUAGE": None,
    "EMAIL_SITE_URL": None,
    "EMAIL_UNSUBSCRIBE_DAYS": 90,
    "WEBPUSH_VAPID_PRIVATE_KEY": None,
    "WEBPUSH_VAPID_PUBLIC_KEY": None,
    "WEBPUSH_VAPID_SUBJECT": None,
    "WEBPUSH_TTL": 86400,
    "WEBPUSH_BATCH_SIZE": 100,
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


#: The keys that are seconds, and their least value. STUCK_AFTER paces the
#: heartbeat (at most every STUCK_AFTER / 5): under a second, it would write
#: the Event more often than its pages. Zero or less would make each rule
#: fire at once, for ever.
SECONDS: dict[str, float] = {
    "RELAY_AFTER": 0.1,
    "STUCK_AFTER": 1,
    "SCHEDULER_LOCK_TTL": 0.1,
    "SCHEDULER_GRACE": 0.1,
    "HEALTH_MAX_AGE": 0.1,
    "STREAM_HEARTBEAT": 1,
}
#: The most seconds any of them may be: 30 days.
MAX_SECONDS = 30 * 24 * 3600
_LOCK_SCHEMES = ("redis://", "rediss://", "unix://")
#: The channels besides the inbox (``channels=[...]``, preferences).
CHANNEL_NAMES = ("email", "webpush")
#: The transports of the live stream (``LIVE``), besides None (off).
LIVE_TRANSPORTS = ("auto", "redis", "postgres", "local")


def _redacted(value: Any) -> str:
    """A setting's value for a message, without what could be a password."""
    if isinstance(value, str) and ("@" in value or "password" in value.lower()):
        return "a value that is not a Redis URL (not shown: it may hold a password)"
    return repr(value)


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


def renamed_keys(raw: Any) -> list[str]:
    """The renamed keys ``raw`` still uses."""
    return [key for key in RENAMED if isinstance(raw, dict) and key in raw]
