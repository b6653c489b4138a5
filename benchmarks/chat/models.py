"""A minimal host app for the benchmarks: a chat message, as in DESIGN.md section 2."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class Message(models.Model):
    """A chat message: what the host saves in the request that notifies the admins."""

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "chat"


class InlineNotification(models.Model):
    """The pattern offchat-notify replaces: one wide row per recipient, written in the request.

    Shaped like the notification model of popular apps (django-notifications
    and the like): recipient, nullable actor, verb, title, body, a generic
    target, a JSON payload, an unread flag and a timestamp, with the usual
    indexes (every foreign key, ``(recipient, unread)`` for the unread count,
    ``created_at`` for the newest-first inbox). Benchmark only: the inline
    variants of request_path.py write here, never to offchat_notify's tables.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    verb = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    target_content_type = models.ForeignKey(
        "contenttypes.ContentType",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    target_object_id = models.CharField(max_length=255, blank=True)
    data = models.JSONField(null=True, blank=True)
    unread = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        app_label = "chat"
        indexes = [models.Index(fields=["recipient", "unread"], name="chat_inline_unread_idx")]


class CeilingNotification(models.Model):
    """The fan-out ceiling: offchat_notify's Notification table, copied for raw SQL inserts.

    Same columns, unique (event, recipient) constraint, indexes (the inbox,
    the unread partial index, none of its own on either key) and, like it, no
    foreign-key constraints (``db_constraint=False``): what a raw ``INSERT ...
    SELECT`` or ``COPY`` of the same narrow rows costs. Benchmark only
    (fanout.py).
    """

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(
        "offchat_notify.Event",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now())
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "chat"
        constraints = [
            models.UniqueConstraint(fields=["event", "recipient"], name="chat_ceiling_once")
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="chat_ceiling_inbox_idx"),
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="chat_ceiling_unread_idx",
            ),
        ]
