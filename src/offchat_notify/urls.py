from __future__ import annotations

from django.urls import path

from . import views

app_name = "offchat_notify"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("metrics/", views.metrics, name="metrics"),
]
