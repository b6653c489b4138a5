"""ChannelSend: one (Event, recipient, channel) send, with its state."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ChannelSend(models.Model):
    """One message of a channel (an email) to one recipient of one Event.

    The rows of an Event are written set-based, before anything is sent, for
    the recipients who have not muted the channel; a send moves from
    ``pending`` to ``sent`` (with the provider's message id) or ``failed``
    (with the error). A retry sends only what is still ``pending``: the
    unique (event, recipient, channel) constraint keeps it to one row each.
    ``claimed_at`` is the lease of the job sending the row's batch.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(
        "offchat_notify.Event",
        verbose_name=_("event"),
        on_delete=models.CASCADE,
        related_name="+",
        # The unique (event, recipient, channel) index serves lookups by event:
        # a second index would only be written on every insert and update.
        db_index=False,
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    channel = models.CharField(_("channel"), max_length=32)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("channel send")
        verbose_name_plural = _("channel sends")
        constraints = [
            models.UniqueConstraint(
                fields=["event", "recipient", "channel"], name="offchat_channelsend_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["event", "channel", "id"],
                name="offchat_send_pending_idx",
                condition=models.Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} of event {self.event_id} to {self.recipient_id} ({self.state})"
