"""The bookkeeping of deliveries and periodic jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .events import Event


class DeliveryChunk(models.Model):
    """One slice of a large Event's audience, delivered by its own job.

    Users with ``lo < pk <= hi`` (``lo`` null: from the start, ``hi`` null: to
    the end). The Event is delivered when its last chunk is done.
    """

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    lo = models.CharField(max_length=64, blank=True)
    hi = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery chunk")
        verbose_name_plural = _("delivery chunks")
        constraints = [
            models.UniqueConstraint(fields=["event", "index"], name="offchat_chunk_once")
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} chunk {self.index}"


class StagedMember(models.Model):
    """A member of a role, as a resolver that only lists ids named it, staged for one
    Event's delivery (see :mod:`offchat_notify.staging`).

    Written in bulk (``COPY`` on PostgreSQL) at the start of each delivery
    attempt, read by the set-based inserts, deleted when the Event is
    delivered. Like Notification's, its keys have no database constraint: the
    rows are written by the hundred thousand and live for one delivery.
    """

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(
        Event,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    role = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        verbose_name = _("staged role member")
        verbose_name_plural = _("staged role members")
        indexes = [models.Index(fields=["event", "role", "user"], name="offchat_staged_idx")]

    def __str__(self) -> str:
        return f"event {self.event_id} role {self.role}: user {self.user_id}"


class JobRun(models.Model):
    """The last run of each periodic job, as the process that ran it recorded it."""

    name = models.CharField(_("job"), max_length=200, unique=True)
    last_started_at = models.DateTimeField(_("last started"))
    last_finished_at = models.DateTimeField(_("last finished"), null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(_("last duration (ms)"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    runs = models.PositiveIntegerField(_("runs"), default=0)

    class Meta:
        verbose_name = _("periodic job run")
        verbose_name_plural = _("periodic job runs")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
