"""The dramatiq backend's options (``OFFCHAT_NOTIFY["OPTIONS"]``), checked in one place."""

from __future__ import annotations

import re
from typing import Any

from offchat_notify.conf import get_settings
from offchat_notify.exceptions import NotifyConfigurationError

#: What ``ON_BROKER_ERROR`` may say.
BROKER_ERROR_POLICIES = ("defer", "sync", "raise")
#: What ``DISPATCH`` may say: send in the committing thread, or in a thread of its own.
DISPATCH_MODES = ("inline", "background")
#: The default queue of the actors.
DEFAULT_QUEUE = "offchat_notify"
# dramatiq's own rule for queue names (dramatiq/actor.py).
_QUEUE_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9._-]*$")

#: The options and their defaults. ``DISPATCH`` defaults to ``"background"``:
#: the request pays for its own database writes and never waits on the broker
#: (a broker that hangs cannot stall requests), and an id still queued when a
#: process dies is sent by the relay. With ``ON_BROKER_ERROR = "raise"``, which
#: needs a caller to raise to, it defaults to ``"inline"`` (see :func:`merged`).
DEFAULTS: dict[str, Any] = {
    "QUEUE": DEFAULT_QUEUE,
    "DISPATCH": "background",
    "ON_BROKER_ERROR": "defer",
}


def merged(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` over :data:`DEFAULTS`; ``DISPATCH``, when not given, is
    ``"inline"`` under ``ON_BROKER_ERROR = "raise"`` and ``"background"`` otherwise."""
    result = {**DEFAULTS, **options}
    if "DISPATCH" not in options and result["ON_BROKER_ERROR"] == "raise":
        result["DISPATCH"] = "inline"
    return result


def problems(merged: dict[str, Any]) -> list[str]:
    """What is wrong with the values of ``merged`` (the options over :data:`DEFAULTS`)."""
    problems: list[str] = []
    prefix = "OFFCHAT_NOTIFY['OPTIONS']"
    queue = merged["QUEUE"]
    if not isinstance(queue, str) or not _QUEUE_NAME_RE.match(queue):
        problems.append(
            f"{prefix}['QUEUE']: {queue!r} is not a valid dramatiq queue name. Use "
            "letters, digits, '.', '_' and '-', starting with a letter or '_'."
        )
    if merged["ON_BROKER_ERROR"] not in BROKER_ERROR_POLICIES:
        problems.append(
            f"{prefix}['ON_BROKER_ERROR'] must be one of "
            f"{', '.join(map(repr, BROKER_ERROR_POLICIES))}, not "
            f"{merged['ON_BROKER_ERROR']!r}. 'defer' leaves the Event pending for the "
            "relay; 'sync' delivers inline; 'raise' lets the broker error reach the caller."
        )
    if merged["DISPATCH"] not in DISPATCH_MODES:
        problems.append(
            f"{prefix}['DISPATCH'] must be one of {', '.join(map(repr, DISPATCH_MODES))}, "
            f"not {merged['DISPATCH']!r}. 'inline' sends to the broker in the committing "
            "thread; 'background' in a thread of its own."
        )
    elif merged["DISPATCH"] == "background" and merged["ON_BROKER_ERROR"] == "raise":
        problems.append(
            f"{prefix}['DISPATCH'] 'background' cannot be combined with ON_BROKER_ERROR "
            "'raise': a send in the background thread has no caller to raise to. Use "
            "ON_BROKER_ERROR 'defer' (the relay sends the Event later) or 'sync', or "
            "DISPATCH 'inline'."
        )
    return problems


def actor_queue() -> str:
    """The queue to declare the actors on: the dramatiq backend's ``QUEUE`` option.

    Read when :mod:`offchat_notify.tasks` is imported (``rundramatiq`` imports
    it at start): a worker serves the queue it was started with.
    """
    try:
        conf = get_settings()
    except NotifyConfigurationError:
        return DEFAULT_QUEUE  # reported by manage.py check
    queue = conf.OPTIONS.get("QUEUE", DEFAULT_QUEUE)
    return queue if isinstance(queue, str) and _QUEUE_NAME_RE.match(queue) else DEFAULT_QUEUE
