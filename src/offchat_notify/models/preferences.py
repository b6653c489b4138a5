"""Preferences: what a user has muted, per channel and verb."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Preference(models.Model):
    """One mute: ``user`` gets nothing on ``channel`` for ``verb`` ("" = every verb).

    A user with no row for a channel gets every verb on it. The row exists
    only while the mute holds: unmuting deletes it, so "who is muted" is a
    ``NOT EXISTS`` on the (user, channel, verb) unique index.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    channel = models.CharField(_("channel"), max_length=32)
    verb = models.CharField(
        _("verb"), max_length=255, blank=True, default="", help_text=_("Empty: every verb.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "channel", "verb"], name="offchat_preference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} mutes {self.channel}:{self.verb or '*'}"
