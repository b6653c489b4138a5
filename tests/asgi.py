"""The ASGI application of the test settings: the live stream's tests serve it with uvicorn."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.asgi_settings")

application = get_asgi_application()
