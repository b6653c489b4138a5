"""A host app as the tests see it: a custom user model and a chat message."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A custom user model: the library must not assume auth.User."""

    role = models.CharField(
        max_length=20,
        blank=True,
        choices=[("admin", "Admin"), ("moderator", "Moderator"), ("member", "Member")],
    )


class Room(models.Model):
    name = models.CharField(max_length=100)


class Message(models.Model):
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE)
    sender = models.ForeignKey(User, on_delete=models.CASCADE)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)


class Document(models.Model):
    """A model with a non-integer primary key, as a notification target."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    title = models.CharField(max_length=100)


class Announcement(models.Model):
    """Wired to notifications only through tests/testapp/notifications.py."""

    text = models.CharField(max_length=200)
    author = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
