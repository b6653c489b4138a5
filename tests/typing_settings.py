"""Settings for the type checker only (``[tool.django-stubs]`` in pyproject.toml).

mypy's Django plugin sets Django up with these to learn the models. The default
user model, as in a host project that has not swapped it; no database is opened.
"""

from __future__ import annotations

SECRET_KEY = "offchat-notify-typing"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.sessions",
    "offchat_notify",
]
