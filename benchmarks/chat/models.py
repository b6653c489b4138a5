from __future__ import annotations

from django.conf import settings
from django.db import models


class Message(models.Model):
    """A chat message: what the host saves in the request that notifies the admins."""

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "chat"
