"""PushSubscription: one browser's web push subscription, owned by one user."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def endpoint_digest(endpoint: str) -> str:
    """The SHA-256 of ``endpoint``, hex: the unique key of a subscription
    (endpoints are long URLs; a digest indexes on every database)."""
    return hashlib.sha256(endpoint.encode()).hexdigest()


class PushSubscription(models.Model):
    """What a browser's ``PushSubscription.toJSON()`` gives: the push service's
    endpoint and the keys to encrypt for it (``p256dh``, ``auth``, base64url).

    One endpoint belongs to one user: subscribing it again moves it. The web
    push channel deletes a subscription its push service answers 404 or 410.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    endpoint = models.TextField(_("endpoint"))
    endpoint_digest = models.CharField(_("endpoint digest"), max_length=64, unique=True)
    p256dh = models.CharField(_("p256dh key"), max_length=100)
    auth = models.CharField(_("auth secret"), max_length=50)
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.endpoint_digest = endpoint_digest(self.endpoint)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"push subscription {self.pk} of {self.user_id}"

    def info(self) -> dict[str, Any]:
        """The subscription as pywebpush takes it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}
