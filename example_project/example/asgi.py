"""ASGI entry point of the example project: what ``run.py`` serves with uvicorn.

ASGI, so that the live stream (``/api/notifications/stream/``) can hold a
connection per open page without holding a thread. With ``DEBUG`` on, Django's
static files handler serves the static files (the admin's, offchat-notify's
inbox script) as ``runserver`` would; in production, a web server or a CDN
serves ``STATIC_ROOT`` (``manage.py collectstatic``).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

django_application = get_asgi_application()
application = ASGIStaticFilesHandler(django_application) if settings.DEBUG else django_application
