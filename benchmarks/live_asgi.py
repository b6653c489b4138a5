"""The ASGI application of live_stream.py's web process.

Started as a user starts it, ``uvicorn benchmarks.live_asgi:application --host
127.0.0.1 --port P``, with the run's Django settings in the environment
(services.child_env): its scratch database, its Redis namespace and live
channel, sessions and the inbox URLs (benchmarks/live_urls.py).
"""

from __future__ import annotations

from django.conf import settings

from benchmarks import services

if not settings.configured:
    services.configure_from_env()

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
