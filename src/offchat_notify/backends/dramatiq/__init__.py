"""The ``dramatiq`` backend: jobs go to Dramatiq actors, run by ``manage.py rundramatiq``.

Everything Dramatiq-specific lives in this package: the backend, the
background sender (``sender``), the dead-lettering Redis broker (``broker``),
broker statistics (``stats``) and the checks of ``DRAMATIQ_BROKER``
(``checks``). The actors themselves are in :mod:`offchat_notify.tasks`, where
``rundramatiq`` finds them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DramatiqBackend", "load_actors"]


def __getattr__(name: str) -> Any:
    # The backend is loaded on first use, not with this package: django-dramatiq
    # imports the broker (``.broker``) while it builds the app registry, before
    # the models that the backend's jobs use can be imported.
    if name in __all__:
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
