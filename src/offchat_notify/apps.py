from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _


class SimpleOffchatNotifyConfig(AppConfig):
    """The app without autodiscovery: rules are registered by the project itself.

    Use ``"offchat_notify.apps.SimpleOffchatNotifyConfig"`` in ``INSTALLED_APPS``
    to stop ``<app>/notifications.py`` modules from being imported.
    """

    name = "offchat_notify"
    label = "offchat_notify"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as notify_checks
        from .channels import email_checks, webpush
        from .conf import reset_caches
        from .registry import default as registry

        checks.register(notify_checks.check_settings, "offchat_notify")
        checks.register(notify_checks.check_rules, "offchat_notify")
        checks.register(notify_checks.check_deploy, "offchat_notify", deploy=True)
        checks.register(notify_checks.check_schedule, "offchat_notify")
        checks.register(notify_checks.check_scheduler_lock, "offchat_notify", deploy=True)
        checks.register(notify_checks.check_renamed, "offchat_notify")
        checks.register(notify_checks.check_sqlite, "offchat_notify")
        checks.register(notify_checks.check_live, "offchat_notify")
        checks.register(webpush.check_webpush, "offchat_notify")
        checks.register(email_checks.check_email, "offchat_notify")
        setting_changed.connect(reset_caches, dispatch_uid="offchat_notify.reset_caches")
        registry.connect_all()


class OffchatNotifyConfig(SimpleOffchatNotifyConfig):
    """The default: also imports ``notifications`` from every installed app."""

    default = True

    def ready(self) -> None:
        super().ready()
        from .registry import autodiscover

        autodiscover()
