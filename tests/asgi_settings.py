"""The test settings, served by a real ASGI server on the loopback (tests/asgi.py)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
