from __future__ import annotations

import logging
from typing import Any

from offchat_notify import metrics
from offchat_notify.exceptions import DeliveryError

from .base import DELIVER, BaseBackend
from .jobs import run

logger = logging.getLogger(__name__)


class SyncBackend(BaseBackend):
    """Run every job inline, in the process that enqueues it (for ``notify()``,
    after commit).

    For development and small sites without a worker. The request pays for the
    whole fan-out. A failed delivery does not break the caller: it is logged
    and recorded on the Event (``queued`` while it has attempts left, for the
    relay; ``failed`` after that, for ``notify_retry``).
    """

    def enqueue(self, job: str, *args: Any) -> None:
        try:
            run(job, args, enqueue=self.enqueue)
        except DeliveryError as exc:
            logger.warning("Inline %s of %s failed: %s", job, args, exc)
        else:
            if job == DELIVER:
                metrics.dispatched("sync")
