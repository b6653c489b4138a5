from __future__ import annotations

import logging

from offchat_notify import metrics
from offchat_notify.delivery import deliver
from offchat_notify.exceptions import DeliveryError

from .base import BaseBackend

logger = logging.getLogger(__name__)


class SyncBackend(BaseBackend):
    """Deliver inline, in the process that called ``notify()``, after commit.

    For development and small sites without a worker. The request pays for the
    whole fan-out. A failed delivery does not break the caller: it is logged
    and recorded on the Event (``queued`` while it has attempts left, for the
    relay; ``failed`` after that, for ``notify_retry``).
    """

    def dispatch(self, event_id: int) -> None:
        try:
            deliver(event_id)
            metrics.dispatched("sync")
        except DeliveryError as exc:
            logger.warning("Inline delivery of event %s failed: %s", event_id, exc)
