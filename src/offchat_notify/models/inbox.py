"""Notifications: one per (Event, recipient), written set-based by the worker."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .events import Event


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user: Any) -> NotificationQuerySet:
        """Notifications addressed to ``user`` (an instance of the user model or a
        primary key)."""
        return self.filter(recipient=user)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)

    def read(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=False)

    def mark_read(self) -> int:
        """Mark the unread notifications of this queryset read; return how many changed."""
        return self.filter(read_at__isnull=True).update(read_at=timezone.now())

    def mark_unread(self) -> int:
        return self.filter(read_at__isnull=False).update(read_at=None)

    def with_event(self) -> NotificationQuerySet:
        """Newest first, with the Event and its actor joined and targets prefetched:
        what an inbox page needs, in a fixed number of queries."""
        return (
            self.select_related("event", "event__actor")
            .prefetch_related("event__target")
            .order_by("-id")
        )


class Notification(models.Model):
    """One recipient's copy of an :class:`Event`. Narrow on purpose: fan-out writes many."""

    # Fan-out writes these by the hundred thousand, so both keys are lean:
    #
    # * no database constraint (db_constraint=False). A constraint costs a
    #   lookup of the referenced row for every row written, which halves the
    #   insert rate on PostgreSQL. Django still cascades deletes of users and
    #   Events through the ORM; rows left behind by deletes that bypass the ORM
    #   are never shown (inbox queries join both tables) and retention
    #   removes them (see retention.purge_orphans).
    # * no index of their own (db_index=False): the unique (event, recipient)
    #   constraint leads with the event and the inbox index with the
    #   recipient, so a separate index on either would only slow inserts.
    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(
        Event,
        verbose_name=_("event"),
        on_delete=models.CASCADE,
        related_name="notifications",
        db_constraint=False,
        db_index=False,
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="offchat_notifications",
        db_constraint=False,
        db_index=False,
    )
    created_at = models.DateTimeField(_("created"), db_default=Now())
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "recipient"], name="offchat_notification_once")
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="offchat_inbox_idx"),
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="offchat_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.verb} -> {self.recipient_id}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    def mark_read(self) -> None:
        if self.read_at is None:
            self.read_at = timezone.now()
            type(self).objects.filter(pk=self.pk, read_at__isnull=True).update(read_at=self.read_at)
