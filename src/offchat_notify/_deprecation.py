"""Module ``__getattr__`` for names that moved: they still work, with a warning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

from .exceptions import NotifyDeprecationWarning


def moved(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` (old name -> new module) from their
    new home, with a :class:`~offchat_notify.exceptions.NotifyDeprecationWarning`."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} moved to {names[name]}.{name}; the old path will stop "
            "working in 0.3.",
            NotifyDeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__
