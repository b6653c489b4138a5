"""Worker fan-out: rows per second and peak RSS of one job, for 10,000 to 1,000,000 recipients.

Each run is a fresh process (fanout_job.py) that writes the rows for one
group of N users (``admin-N``, populated set-based by services.populate):

- ``offchat``: ``offchat_notify.delivery.deliver`` of an Event for the role,
  with ``PARALLEL_CHUNK=None`` (the whole audience in this one job) and the
  default ``PAGE_SIZE``;
- ``listed``: the same, with a resolver that can only list the members' ids
  (``benchmarks.chat.roles.GroupListedRoles``): offchat-notify stages them
  (``COPY`` on PostgreSQL) before its set-based inserts;
- ``bulk``: the inline way, the wide rows built in Python and written by one
  ``bulk_create`` (what a request, or a naive Celery task, does);
- ``insert_select`` / ``copy``: the ceiling, a raw ``INSERT ... SELECT`` in one
  statement, and on PostgreSQL a ``COPY`` stream, of the same narrow rows into
  ``chat.CeilingNotification`` (the Notification table's columns, unique
  constraint and indexes, without foreign keys).

Before every run the three row tables are emptied (TRUNCATE on PostgreSQL,
then a CHECKPOINT), so every run starts from the same state. The methods of
one repetition run in a shuffled order.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from typing import Any

from benchmarks import services
from benchmarks.variants import TEXT, VERB

LABELS = {
    "offchat": "offchat-notify deliver (one job)",
    "listed": "offchat-notify deliver, ids listed by the resolver (one job)",
    "bulk": "inline bulk_create, wide rows",
    "insert_select": "raw INSERT ... SELECT (ceiling)",
    "copy": "raw COPY (ceiling)",
}
#: The PostgreSQL application_name of the jobs' sessions, to end them with a stopped job.
JOB_APP = "offchat-bench-fanout-job"


def methods(vendor: str, size: int, bulk_max: int) -> list[str]:
    """The methods run for ``size`` recipients: bulk_create only up to ``bulk_max``."""
    found = ["offchat", "listed", "insert_select"]
    if size <= bulk_max:
        found.append("bulk")
    if vendor == "postgresql":
        found.append("copy")
    return found


def empty_tables() -> None:
    from django.db import connection

    from benchmarks.chat.models import CeilingNotification, InlineNotification
    from offchat_notify.models import Notification, StagedMember

    models = (Notification, StagedMember, InlineNotification, CeilingNotification)
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
            cursor.execute("CHECKPOINT")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def one_run(
    spec: dict[str, Any], method: str, size: int, sender: Any, cap: float
) -> dict[str, Any]:
    """One run of ``method`` for ``size`` recipients in a new process, stopped after ``cap`` s."""
    from benchmarks.chat.models import Message
    from offchat_notify import Audience
    from offchat_notify.api import _validated_fields
    from offchat_notify.models import Event

    role = f"admin-{size}"
    empty_tables()
    message = Message.objects.create(sender=sender, text=TEXT)
    if method in ("offchat", "listed"):
        fields = _validated_fields(
            verb=VERB,
            title="New message",
            body="",
            level="info",
            actor=sender,
            target=message,
            data=None,
        )
        object_id = Event.objects.create(audience=Audience.role(role).spec, **fields).pk
    elif method == "bulk":
        object_id = message.pk
    else:
        object_id = Event.objects.create(audience={"role": role}, verb=VERB).pk
    notify = {**spec["notify"], "BACKEND": "sync", "OPTIONS": {}, "PARALLEL_CHUNK": None}
    if method == "listed":
        notify["ROLE_RESOLVER"] = "benchmarks.chat.roles.GroupListedRoles"
    job_spec = {**spec, "notify": notify}
    if "postgresql" in spec["database"]["ENGINE"]:
        options = {**spec["database"].get("OPTIONS", {}), "application_name": JOB_APP}
        job_spec["database"] = {**spec["database"], "OPTIONS": options}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fanout_job", method, role, str(object_id)],
        env=services.child_env(job_spec),
        cwd=services.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started, peak = time.monotonic(), 0.0
    while True:
        try:
            out, err = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            peak = max(peak, services.peak_rss_of(proc.pid) or 0.0)
            if time.monotonic() - started > cap:
                return stopped(proc, method, size, object_id, time.monotonic() - started, peak)
    if proc.returncode != 0:
        raise RuntimeError(f"fan-out job {method} {size} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(size=size, label=LABELS[method], finished=True, ok=result["rows"] == size)
    return result


def stopped(
    proc: Any, method: str, size: int, object_id: int, elapsed: float, peak: float
) -> dict[str, Any]:
    """Kill a job past its time cap (and its database session); count what it wrote."""
    from django.db import connection

    from benchmarks.chat.models import CeilingNotification, InlineNotification
    from offchat_notify.models import Notification

    proc.kill()
    proc.communicate()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                "%s AND datname = current_database()",
                [JOB_APP],
            )
    if method in ("offchat", "listed"):
        rows = Notification.objects.filter(event_id=object_id).count()
    elif method == "bulk":
        rows = InlineNotification.objects.filter(target_object_id=str(object_id)).count()
    else:
        rows = CeilingNotification.objects.filter(event_id=object_id).count()
    return {
        "method": method,
        "size": size,
        "label": LABELS[method],
        "rows": rows,
        "seconds": elapsed,
        "peak_rss_mb": peak,
        "finished": False,
        "ok": rows <= size,
    }


def run(
    spec: dict[str, Any],
    plan: dict[str, Any],
    vendor: str,
    seed: int,
    log: Any,
) -> list[dict[str, Any]]:
    """Every size, ``plan["repeats"]`` times, each method once per repetition in a shuffled
    order; a run that takes longer than ``plan["cap"][vendor]`` seconds is stopped."""
    from django.contrib.auth.models import User

    rng = random.Random(seed)
    sender = User.objects.get(username="sender")
    cap = plan["cap"][vendor]
    results = []
    for size in plan["sizes"]:
        for rep in range(plan["repeats"][size]):
            order = methods(vendor, size, plan["bulk_max"][vendor])
            rng.shuffle(order)
            for method in order:
                result = one_run(spec, method, size, sender, cap)
                result["repeat"] = rep
                results.append(result)
                rate = f"{size / result['seconds']:>10,.0f} rows/s"
                if not result["finished"]:
                    rate = f"STOPPED after the {cap} s cap, {result['rows']:,} rows written"
                log(
                    f"fan-out {size:>9,} {method:<13} {result['seconds']:8.2f} s {rate}  peak RSS "
                    f"{result['peak_rss_mb']:.0f} MB{'' if result['ok'] else '  ROWS WRONG'}"
                )
    empty_tables()
    return results
