from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles import finders
from django.http import FileResponse, HttpRequest
from django.urls import include, path


def service_worker(request: HttpRequest) -> FileResponse:
    """offchat-notify's service worker for web push, served from the site's root so
    that it may show notifications for every page."""
    response = FileResponse(
        open(finders.find("offchat_notify/sw.js"), "rb"),  # noqa: SIM115 - FileResponse closes it
        content_type="text/javascript",
    )
    response["Service-Worker-Allowed"] = "/"
    return response


urlpatterns = [
    path("", include("chat.urls")),
    # offchat-notify's inbox API and live stream, for the badge in base.html.
    # Any prefix works: the template tag reverses the URLs.
    path("api/notifications/", include("offchat_notify.inbox.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("sw.js", service_worker, name="service_worker"),
]
