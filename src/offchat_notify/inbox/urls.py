"""The user-facing URLs: the inbox JSON API and the live stream.

Mount them with ``path("notifications/", include("offchat_notify.inbox.urls"))``,
apart from the operations URLs (``offchat_notify.urls``). The URL names are
in the namespace ``offchat_notify_inbox``: ``list``, ``unread``, ``read``,
``unread_one``, ``read_all``, ``stream``, ``preferences``, ``unsubscribe``, ``push_key``,
``push_subscribe`` and ``push_unsubscribe``.
"""

from __future__ import annotations

from django.urls import path

from . import views
from .http import APP_NAME
from .preferences import preference_view
from .push import key_view, subscribe_view
from .push import unsubscribe_view as push_unsubscribe_view
from .stream import stream
from .unsubscribe import unsubscribe_view

app_name = APP_NAME

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("unread/", views.unread, name="unread"),
    path("read/", views.mark_all_read, name="read_all"),
    path("<int:pk>/read/", views.mark_read, name="read"),
    path("<int:pk>/unread/", views.mark_unread, name="unread_one"),
    path("stream/", stream, name="stream"),
    path("preferences/", preference_view, name="preferences"),
    path("unsubscribe/<str:token>/", unsubscribe_view, name="unsubscribe"),
    path("push/key/", key_view, name="push_key"),
    path("push/subscribe/", subscribe_view, name="push_subscribe"),
    path("push/unsubscribe/", push_unsubscribe_view, name="push_unsubscribe"),
]
