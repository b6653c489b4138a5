"""The ``deliver_channel`` job: send one channel of one Event, batch after batch.

The Event's sends were written ``pending`` when its inbox rows were done
(:func:`offchat_notify.channels.sends.record`, muted users left out in SQL).
The job claims ``EMAIL_BATCH_SIZE`` of them at a time, sends them on one
connection, and marks them ``sent`` as soon as the batch's sending returns,
or ``failed`` for good (a refused or invalid address). A transient error (the
server away or answering 4xx) gives the rest of the batch back and raises
:exc:`~offchat_notify.exceptions.TransientDeliveryError`: the backend retries
the job with backoff, and the retry sends only what is still ``pending``.

Duplicates: a worker killed after the provider accepted a batch and before
its ``sent`` marks were committed sends that batch again, at most, once the
lease of its rows (:func:`lease`) has run out.
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

logger = logging.getLogger(__name__)

#: The job name, as :mod:`offchat_notify.backends.base` declares it.
DELIVER_CHANNEL = "deliver_channel"

#: The channels that send, by name: a batch of sends in, an Outcome out.
SENDERS: dict[str, Callable[[list[ChannelSend]], email.Outcome]] = {
    "email": email.send_batch,
    "webpush": webpush.send_batch,
}


def lease() -> float:
    """Seconds a job holds the batch it claimed; after that, a job that died
    is assumed and its batch is sent again: four times ``STUCK_AFTER``, plus
    what the rate limit makes a batch last."""
    conf = get_settings()
    rate = conf.EMAIL_RATE_LIMIT
    return conf.STUCK_AFTER * 4 + (conf.EMAIL_BATCH_SIZE / rate if rate else 0)


def sending(event: Event) -> list[str]:
    """The channels of ``event`` that have a sender."""
    return [channel for channel in event.channels if channel in SENDERS]


def deliver_channel(
    event_id: int, channel: str, *, sleep: Callable[[float], None] = time.sleep
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
    conf = get_settings()
    rate = conf.EMAIL_RATE_LIMIT
    total = 0
    while batch := sends.claim(event_id, channel, conf.EMAIL_BATCH_SIZE, lease()):
        started = monotonic()
        outcome = send_batch(batch)
        sends.mark_sent(outcome.sent)  # right after the batch: the duplicate window
        sends.mark_failed(outcome.failed)
        total += len(outcome.sent)
        for pk, error in outcome.failed.items():
            logger.warning("Event %s %s send %s failed: %s", event_id, channel, pk, error)
        if outcome.transient is not None:
            done = outcome.sent.keys() | outcome.failed.keys()
            rest = [send.pk for send in batch if send.pk not in done]
            left = sends.release(rest, outcome.transient, max_attempts=conf.MAX_ATTEMPTS)
            raise TransientDeliveryError(
                f"Event {event_id} {channel}: {outcome.transient}; {left} send(s) of the "
                f"batch and {sends.remaining(event_id, channel) - left} more wait for a retry"
            )
        if rate:
            wait = len(outcome.sent) / rate - (monotonic() - started)
            if wait > 0:
                sleep(wait)
    logger.info("Event %s: %d %s message(s) sent.", event_id, total, channel)
    return total
