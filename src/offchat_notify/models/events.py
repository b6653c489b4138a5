"""The Event: one per ``notify()`` call, written by the request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router
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
        sql, fields, constants = _insert_statement(connection)
        params = []
        for field in fields:
            known = constants.get(field.attname)
            value = getattr(event, field.attname)
            if known is not None and value is known[0]:
                params.append(known[1])  # the default, prepared once
            else:
                params.append(field.get_db_prep_save(field.pre_save(event, True), connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            event.pk = cursor.fetchone()[0]
        event._state.adding = False
        event._state.db = using
        return event


#: Per database vendor: the INSERT, its fields, and the prepared value of each
#: field whose default is a constant (by attname: (default, prepared)).
_statements: dict[str, tuple[str, list[Any], dict[str, tuple[Any, Any]]]] = {}
#: Constant defaults that are safe to compare by identity and share.
_SHAREABLE = (type(None), bool, int, str)


def _insert_statement(connection: Any) -> tuple[str, list[Any], dict[str, tuple[Any, Any]]]:
    key = connection.vendor
    if key not in _statements:
        fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        constants = {}
        for field in fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                continue  # pre_save() sets these
            default = field.get_default()
            if callable(field.default) or not isinstance(default, _SHAREABLE):
                continue
            constants[field.attname] = (default, field.get_db_prep_save(default, connection))
        _statements[key] = (
            f"INSERT INTO {quote(Event._meta.db_table)} "
            f"({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) "
            f"RETURNING {quote(Event._meta.pk.column)}",
            fields,
            constants,
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
    channels = models.JSONField(
        _("channels"), default=list, blank=True, help_text=_("Besides the inbox: email, webpush.")
    )
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
