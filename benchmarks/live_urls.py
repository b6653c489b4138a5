"""The URLconf of live_stream.py's web process: the inbox URLs, mounted as a host mounts them."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("notifications/", include("offchat_notify.inbox.urls")),
]
