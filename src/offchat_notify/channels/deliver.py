"""The ``deliver_channel`` job: send one channel of one Event, batch after batch.

The Event's sends were written ``pending`` when its inbox rows were done
(:func:`offchat_notify.channels.sends.record`, muted users left out in SQL).
The job claims a batch of them at a time (:func:`batch_size`) and sends it
on one connection. Its :class:`~.pacing.Keeper` spaces the messages to the
rate limit and, about once a second, marks ``sent`` what went out and renews
the lease of the rest. A send refused for good (an invalid address, a
subscription gone) is marked ``failed``. A transient error (the server away
or answering 4xx) gives the rest of the batch back and raises
:exc:`~offchat_notify.exceptions.TransientDeliveryError`: the backend retries
the job with backoff, and the retry sends only what is still ``pending``.

Duplicates: a worker killed after the provider accepted a message and before
its ``sent`` mark was committed (within the last heartbeat, about a second)
sends that message again, once the lease (``STUCK_AFTER``) has run out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from time import monotonic

from offchat_notify.conf import get_settings
from offchat_notify.exceptions import TransientDeliveryError
from offchat_notify.models import ChannelSend, Event

from . import email, sends, webpush
from .pacing import Keeper, Progress, lease

logger = logging.getLogger(__name__)

#: The job name, as :mod:`offchat_notify.backends.base` declares it.
DELIVER_CHANNEL = "deliver_channel"

#: The channels that send, by name: a batch of sends and the keeper to call
#: before each message in, an Outcome out.
SENDERS: dict[str, Callable[[list[ChannelSend], Callable[[Progress], None]], email.Outcome]] = {
    "email": email.send_batch,
    "webpush": webpush.send_batch,
}


def batch_size(channel: str) -> int:
    """Sends per batch: ``EMAIL_BATCH_SIZE`` or ``WEBPUSH_BATCH_SIZE``."""
    conf = get_settings()
    return conf.WEBPUSH_BATCH_SIZE if channel == "webpush" else conf.EMAIL_BATCH_SIZE


def rate_limit(channel: str) -> float | None:
    """Messages per second at most (``EMAIL_RATE_LIMIT``, email only), or None."""
    return get_settings().EMAIL_RATE_LIMIT if channel == "email" else None


def sending(event: Event) -> list[str]:
    """The channels of ``event`` that have a sender."""
    return [channel for channel in event.channels if channel in SENDERS]


def deliver_channel(
    event_id: int,
    channel: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = monotonic,
) -> int | None:
    """Send the pending sends of (Event, channel); return how many were sent now.

    Returns None if there is no such Event.

    Raises:
        TransientDeliveryError: a batch met a transient error; what it did not
            send stays pending for the retry.
    """
    event = Event.objects.filter(pk=event_id).only("pk", "channels").first()
    if event is None:
        return None
    send_batch = SENDERS.get(channel)
    if send_batch is None or channel not in event.channels:
        logger.warning("Event %s has no %r channel to send; nothing to do.", event_id, channel)
        return 0
    keeper = Keeper(rate=rate_limit(channel), sleep=sleep, clock=clock)
    size, total = batch_size(channel), 0
    while batch := sends.claim(event_id, channel, size, lease()):
        keeper.start(send.pk for send in batch)
        outcome = send_batch(batch, keeper)
        keeper.finish(outcome)  # right after the batch: the duplicate window
        total += len(outcome.sent)
        for pk, error in outcome.failed.items():
            logger.warning("Event %s %s send %s failed: %s", event_id, channel, pk, error)
        if outcome.transient is not None:
            done = outcome.sent.keys() | outcome.failed.keys()
            rest = [send.pk for send in batch if send.pk not in done]
            left = sends.release(rest, outcome.transient, max_attempts=get_settings().MAX_ATTEMPTS)
            raise TransientDeliveryError(
                f"Event {event_id} {channel}: {outcome.transient}; {left} send(s) of the "
                f"batch and {sends.remaining(event_id, channel) - left} more wait for a retry"
            )
    logger.info("Event %s: %d %s message(s) sent.", event_id, total, channel)
    return total
