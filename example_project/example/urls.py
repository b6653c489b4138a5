from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", include("chat.urls")),
    # offchat-notify's inbox API and live stream, for the badge in base.html.
    # Any prefix works: the template tag reverses the URLs.
    path("api/notifications/", include("offchat_notify.inbox.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
