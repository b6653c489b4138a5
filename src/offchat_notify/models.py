"""Storage: one :class:`Event` per ``notify()`` call, one :class:`Notification` per recipient."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EventManager(models.Manager["Event"]):
    def insert(self, event: Event) -> Event:
        """Write a new Event with one pre-compiled ``INSERT ... RETURNING``.

        This is the request path's only write, so it skips what a plain
        ``save()`` spends on compiling the same statement every time. The
        model's ``pre_save``/``post_save`` signals are not sent for it. Field
        defaults and ``get_db_prep_save`` conversions apply exactly as in
        ``save()``. Databases that cannot return the id from an INSERT use
        ``save()``.
        """
        using = self._db or router.db_for_write(self.model)
        connection = connections[using]
        if not connection.features.can_return_columns_from_insert:
            event.save(using=using, force_insert=True)
            return event
        sql, fields = _insert_statement(connection)
        params = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            event.pk = cursor.fetchone()[0]
        event._state.adding = False
        event._state.db = using
        return event


_statements: dict[str, tuple[str, list[Any]]] = {}


def _insert_statement(connection: Any) -> tuple[str, list[Any]]:
    key = connection.vendor
    if key not in _statements:
        fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        _statements[key] = (
            f"INSERT INTO {quote(Event._meta.db_table)} "
            f"({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) "
            f"RETURNING {quote(Event._meta.pk.column)}",
            fields,
        )
    return _statements[key]


class Event(models.Model):
    """What happened and who must hear of it: the unit of delivery.

    The request writes one Event and nothing else. Workers read the payload
    and the audience spec from here; the broker only ever carries the id.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        QUEUED = "queued", _("queued")
        DELIVERING = "delivering", _("delivering")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    class Level(models.TextChoices):
        DEBUG = "debug", _("debug")
        INFO = "info", _("info")
        SUCCESS = "success", _("success")
        WARNING = "warning", _("warning")
        ERROR = "error", _("error")

    id = models.BigAutoField(primary_key=True)
    verb = models.CharField(_("verb"), max_length=255)
    title = models.CharField(_("title"), max_length=255, blank=True)
    body = models.TextField(_("body"), blank=True)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.INFO)
    data = models.JSONField(_("data"), default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    target_content_type = models.ForeignKey(
        ContentType,
        verbose_name=_("target type"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    target_object_id = models.CharField(_("target id"), max_length=255, blank=True)
    target = GenericForeignKey("target_content_type", "target_object_id")
    audience = models.JSONField(_("audience"))
    key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True, unique=True)

    state = models.CharField(
        _("state"), max_length=12, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    failures = models.PositiveIntegerField(
        _("failures"), default=0, help_text=_("Failed attempts; at MAX_ATTEMPTS it fails.")
    )
    recipient_count = models.PositiveIntegerField(_("recipients"), default=0)
    skipped_count = models.PositiveIntegerField(
        _("skipped"), default=0, help_text=_("Named user ids that are not active users.")
    )
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    started_at = models.DateTimeField(_("delivery started"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("delivery time (ms)"), null=True, blank=True)

    objects = EventManager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "updated_at"], name="offchat_event_state_idx")]

    def __str__(self) -> str:
        return f"{self.verb} #{self.pk} ({self.state})"


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user: object) -> NotificationQuerySet:
        """Notifications addressed to ``user`` (a user instance or a primary key)."""
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
