"""The host's own models: conversations and the messages posted in them."""

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
    flagged = models.BooleanField(default=False, help_text="Marked for a moderator's attention.")
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
