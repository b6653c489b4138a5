"""What users see: the inbox JSON API, the live stream and the browser client.

Mounted by a host with ``path("notifications/", include("offchat_notify.inbox.urls"))``,
apart from the operations URLs (``offchat_notify.urls``).
"""
