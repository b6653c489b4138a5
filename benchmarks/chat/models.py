"""A minimal host app for the benchmarks: a chat message, as in DESIGN.md section 2."""

from __future__ import annotations

from django.conf import settings
from django.db import models
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
