"""The operations URLs (health, metrics), apart from anything users see."""

from __future__ import annotations

from django.urls import path

from .ops import views

app_name = "offchat_notify"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("metrics/", views.metrics, name="metrics"),
]
