"""Checks of what a caller hands to ``notify()``, before anything is written.

Whatever the database or the JSON encoder would refuse later, in the caller's
transaction or in a worker, is refused here with
:class:`~offchat_notify.exceptions.InvalidNotification`: the call writes
nothing, and the caller's transaction stays usable.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.db.models import Model

from .exceptions import InvalidNotification

#: How deep ``data`` may nest (dicts and lists inside each other).
MAX_DEPTH = 32
#: The largest integer ``data`` may hold: a signed 64-bit one, what every
#: JSON reader of ``data`` (PostgreSQL, JavaScript's BigInt, Python) can take.
MAX_INT = 2**63 - 1
#: Unicode's control characters (category Cc: U+0000-U+001F and U+007F-U+009F),
#: and the same without the newlines and tabs a multi-line text (``body``) may hold.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text(name: str, value: Any, *, max_length: int | None = None, lines: bool = False) -> str:
    """``value`` if it is a string the database can store and a terminal can show safely.

    NUL and lone surrogates cannot be stored (PostgreSQL, UTF-8). Control
    characters are refused too (``lines=True`` allows newlines and tabs): a
    verb or a title reaches logs, terminals and mail headers.
    """
    if not isinstance(value, str):
        raise InvalidNotification(f"{name} must be a string, not {type(value).__name__}.")
    if max_length is not None and len(value) > max_length:
        raise InvalidNotification(
            f"{name} must be at most {max_length} characters, not {len(value)}."
        )
    _storable(name, value)
    found = (_CONTROLS_BUT_LINES if lines else _CONTROLS).search(value)
    if found is not None:
        raise InvalidNotification(
            f"{name} contains the control character {found.group()!r} at position "
            f"{found.start()}; "
            + ("only newlines and tabs are allowed." if lines else "use plain text.")
        )
    return value


def _storable(name: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidNotification(
            f"{name} contains a NUL character (\\x00), which the database cannot store."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidNotification(
            f"{name} is not valid Unicode: {e.reason} at position {e.start} "
            f"({value[e.start : e.end]!r}); it cannot be stored."
        ) from None


def json_data(data: Any) -> dict[str, Any]:
    """``data`` as stored: a dict of JSON values, checked all the way down."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidNotification(f"data must be a dict, not {type(data).__name__}.")
    _check_json(data, "data", 1)
    return data


def _check_json(value: Any, path: str, depth: int) -> None:
    if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
        raise InvalidNotification(f"{path} nests deeper than {MAX_DEPTH} levels; flatten the data.")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidNotification(
                    f"{path} has a non-string key {k!r}; JSON keys are strings."
                )
            _storable(f"{path} key {k[:40]!r}", k)
            _check_json(v, f"{path}[{k!r}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, str):
        _storable(path, value)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise InvalidNotification(
                f"{path} is an integer of {value.bit_length()} bits; data holds integers of "
                "at most 64 bits. Store larger numbers as strings."
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidNotification(f"{path} is {value!r}, which JSON cannot represent.")
    else:
        raise InvalidNotification(
            f"{path} is a {type(value).__name__}, which is not JSON-serialisable. "
            "Convert it first (for example str() for dates and UUIDs)."
        )


def saved_instance(name: str, value: Any, model: type[Model] | None = None) -> Model:
    """``value`` if it is a model instance (of ``model``) that is in the database.

    An unsaved instance would be written as a dangling key: its foreign key
    fails at COMMIT and takes the caller's own writes with it.
    """
    kind = model._meta.label if model is not None else "model"
    if not isinstance(value, model or Model):
        raise InvalidNotification(f"{name} must be a saved {kind} instance or None, not {value!r}.")
    if value.pk is None or value._state.adding:
        raise InvalidNotification(
            f"{name} must be a saved {kind} instance or None: {value!r} is an unsaved "
            f"{value._meta.label}; save it first."
        )
    return value
