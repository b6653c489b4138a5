"""The host's own models: conversations, the messages posted in them, and flags.

None of them knows about offchat-notify: chat/notifications.py wires them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Conversation(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("chat:conversation", args=[self.pk])


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        text = self.text if len(self.text) <= 40 else f"{self.text[:39]}…"
        return f"{self.sender}: {text}"

    def get_absolute_url(self) -> str:
        # conversation_id, not conversation: no query per message in a list.
        url = reverse("chat:conversation", args=[self.conversation_id])
        return f"{url}#message-{self.pk}"


class Flag(models.Model):
    """A user asking the moderators to look at a message. Once per user and message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="flags")
    flagged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_flags"
    )
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "flagged_by"], name="chat_flag_once")
        ]

    def __str__(self) -> str:
        return f"{self.flagged_by} flagged message {self.message_id}"

    def get_absolute_url(self) -> str:
        return self.message.get_absolute_url()
