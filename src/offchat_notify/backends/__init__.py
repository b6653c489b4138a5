"""Notifier backends: where and when the library's jobs run.

The backend is chosen by ``OFFCHAT_NOTIFY["BACKEND"]``: a short name from
:data:`offchat_notify.conf.BUILTIN_BACKENDS` or a dotted path to a
:class:`~offchat_notify.backends.base.BaseBackend` subclass, and built with
``OFFCHAT_NOTIFY["OPTIONS"]``.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from offchat_notify.conf import backend_options, get_settings, settings_cache
from offchat_notify.exceptions import InvalidNotifierBackend

from .base import BaseBackend

__all__ = ["BaseBackend", "get_backend", "load_backend"]


def load_backend(path: str) -> type[BaseBackend]:
    """Import the backend class at ``path`` and check that it is one.

    Raises:
        InvalidNotifierBackend: ``path`` does not import or is not a backend.
    """
    try:
        cls = import_string(path)
    except ImportError as e:
        raise InvalidNotifierBackend(
            f"OFFCHAT_NOTIFY['BACKEND']: could not import {path!r}: {e}. Use 'sync', "
            "'eager', 'dramatiq', 'tasks', or the dotted path of a BaseBackend subclass."
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, BaseBackend)):
        raise InvalidNotifierBackend(
            f"OFFCHAT_NOTIFY['BACKEND']: {path!r} is not a subclass of "
            "offchat_notify.backends.base.BaseBackend."
        )
    return cls


@settings_cache
def get_backend() -> BaseBackend:
    """The configured backend instance, built once per process with its options.

    The cache is cleared when ``OFFCHAT_NOTIFY`` changes (``override_settings``).
    """
    cls = load_backend(get_settings().backend_path)
    return cls(backend_options(cls.default_options))
