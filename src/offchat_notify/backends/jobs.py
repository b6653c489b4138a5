"""The library's jobs by name: what a backend runs when it runs one.

Every backend ends here, in a worker or in-process: the dramatiq actors, the
Django tasks, the sync and eager backends all call :func:`run`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from offchat_notify import delivery
from offchat_notify.channels import deliver as channel_jobs
from offchat_notify.exceptions import PoisonMessage
from offchat_notify.schedule import runs

from .base import DELIVER, DELIVER_CHANNEL, DELIVER_CHUNK, JOB_NAMES, RUN_JOB

#: ``backend.enqueue``: how a job enqueues the jobs it spawns (a large Event's chunks).
Enqueue = Callable[..., None]


def run(job: str, args: Sequence[Any], *, enqueue: Enqueue) -> Any:
    """Run ``job`` with ``args`` here and now; jobs it spawns go to ``enqueue``.

    Raises:
        PoisonMessage: ``job`` is not a job name, or ``args`` are not its arguments.
        DeliveryError: a delivery failed; it is recorded on the Event.
    """
    check_args(job, args)
    if job == DELIVER:
        return delivery.deliver(args[0], enqueue=enqueue)
    if job == DELIVER_CHUNK:
        return delivery.deliver_chunk(args[0], args[1], enqueue=enqueue)
    if job == DELIVER_CHANNEL:
        return channel_jobs.deliver_channel(args[0], args[1])
    return runs.run_job(args[0])


def check_args(job: str, args: Sequence[Any], kwargs: dict[str, Any] | None = None) -> None:
    """Refuse a job whose arguments are not what it takes (a forged or corrupt message)."""
    if job in (DELIVER, DELIVER_CHUNK):
        count, takes = (
            (1, "one Event id (int)")
            if job == DELIVER
            else (2, "an Event id and a chunk index (ints)")
        )
        if kwargs or len(args) != count or not all(type(a) is int for a in args):
            got = f"{list(args)!r}" + (f" and keywords {kwargs!r}" if kwargs else "")
            raise PoisonMessage(f"Not a {job} job: it takes {takes}, got {got}")
    elif job == DELIVER_CHANNEL:
        if kwargs or len(args) != 2 or type(args[0]) is not int or not isinstance(args[1], str):
            raise PoisonMessage(
                f"Not a deliver_channel job: it takes an Event id (int) and a channel name, "
                f"got {list(args)!r}."
            )
    elif job == RUN_JOB:
        if kwargs or len(args) != 1 or not isinstance(args[0], str):
            raise PoisonMessage(f"Not a run_job job: it takes one job name, got {list(args)!r}.")
    else:
        raise PoisonMessage(f"Unknown job {job!r}; the jobs are {', '.join(JOB_NAMES)}.")
