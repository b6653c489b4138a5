"""The system check of the email channel: W014, emails without an unsubscribe link.

Whether ``EMAIL_SITE_URL`` is an absolute URL is checked with the other
settings (``offchat_notify.E002``); this check reports a site whose verbs send
email by default while the setting is missing.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from offchat_notify.conf import get_settings

W014 = "offchat_notify.W014"
#: The most verbs the message names.
_SHOWN = 5


def check_email(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W014: a verb sends email by default (``CHANNELS_BY_VERB``) and
    ``EMAIL_SITE_URL`` is not set, so its emails carry no unsubscribe link.

    Mandatory verbs (``MANDATORY_VERBS``) never carry one, so they alone
    are not reported.
    """
    try:
        conf = get_settings()
    except Exception:  # reported by check_settings
        return []
    if conf.EMAIL_SITE_URL:
        return []
    mandatory = set(conf.MANDATORY_VERBS)
    verbs = sorted(
        verb
        for verb, names in conf.CHANNELS_BY_VERB.items()
        if "email" in names and verb not in mandatory
    )
    if not verbs:
        return []
    shown = ", ".join(repr(verb) for verb in verbs[:_SHOWN])
    more = f" and {len(verbs) - _SHOWN} more" if len(verbs) > _SHOWN else ""
    return [
        checks.Warning(
            f"OFFCHAT_NOTIFY['CHANNELS_BY_VERB'] sends email for {shown}{more}, but "
            "OFFCHAT_NOTIFY['EMAIL_SITE_URL'] is not set: these emails go out without a "
            "one-click unsubscribe link (List-Unsubscribe, RFC 8058), which the bulk "
            "sender rules of Gmail and Yahoo require.",
            hint="Set OFFCHAT_NOTIFY['EMAIL_SITE_URL'] to the absolute https URL of the "
            'site, such as "https://chat.example.com", with the inbox URLs '
            "(offchat_notify.inbox.urls) in its URLconf. See Channels: Unsubscribing in "
            "one click.",
            id=W014,
        )
    ]
