"""Django settings of the benchmark's ``rundramatiq`` workers (end_to_end.py).

The settings are the run's own, passed in ``$OFFCHAT_BENCH_SETTINGS`` by the
process that starts the workers (services.child_env).
"""

from __future__ import annotations

from benchmarks.services import settings_from_env

globals().update(settings_from_env())
