from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _


class OffchatNotifyConfig(AppConfig):
    """Registers the system checks and resets cached settings when they change."""

    name = "offchat_notify"
    label = "offchat_notify"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as notify_checks
        from .conf import reset_caches

        checks.register(notify_checks.check_settings, "offchat_notify")
        checks.register(notify_checks.check_deploy, "offchat_notify", deploy=True)
        setting_changed.connect(reset_caches, dispatch_uid="offchat_notify.reset_caches")
