from __future__ import annotations

from typing import Any

from offchat_notify.exceptions import NotifyConfigurationError


def load_actor() -> Any:
    """Import the delivery actor, turning dramatiq's declaration errors into advice.

    Importing ``offchat_notify.tasks`` declares the actor on the broker
    django-dramatiq built; it fails if that broker lacks the middleware the
    actor's options need.
    """
    try:
        from offchat_notify.tasks import deliver_event
    except ValueError as e:
        raise NotifyConfigurationError(
            f"The delivery actor cannot be declared on the configured broker: {e}. "
            "Run manage.py check for the missing DRAMATIQ_BROKER['MIDDLEWARE'] entries."
        ) from e
    return deliver_event
