"""tests/settings.py with dramatiq's own RedisBroker, for a worker to compare with the library's.

A worker started with ``env={"DJANGO_SETTINGS_MODULE": __name__, "TEST_BROKER": "redis"}``
(see test_broker_wakeup_workers.py).
"""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import DRAMATIQ_BROKER

DRAMATIQ_BROKER = {**DRAMATIQ_BROKER, "BROKER": "dramatiq.brokers.redis.RedisBroker"}
