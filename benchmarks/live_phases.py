"""The two measurements of live_stream.py, for N logged-in clients of one web process.

:func:`stream_phase`: N clients hold the stream open. Their memory and the
server's idle CPU first, then one message at a time, each after an idle gap:
the time from its commit until each client holds the event.

:func:`poll_phase`: the same N users poll the unread count instead, each
every ``interval`` seconds from a random phase: the server's CPU and the
database's load in a quiet window, then how long each client takes to see
each new message in its count.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import threading
import time
from collections import Counter
from typing import Any

from benchmarks.live_clients import REQUEST_TIMEOUT, Loop, PollClient, Received, StreamClient
from benchmarks.live_server import WebServer, db_counters, redis_subscribers
from benchmarks.variants import TEXT, VERB

CONNECT_AT_ONCE = 50  # clients opening their connection at the same time
PG_STATS_DELAY = 10.0  # seconds an idle backend may keep its counts in pg_stat_database


class Collector:
    """Counts, in the clients' loop, who holds the awaited event; wakes the sender when all do."""

    def __init__(self, clients: int) -> None:
        self.clients, self.counts = clients, Counter[str]()
        self.awaited: str | None = None
        self.done = threading.Event()

    def arm(self, title: str) -> None:
        self.done.clear()
        self.awaited = title

    def __call__(self, client: StreamClient, got: Received) -> None:
        self.counts[got.title] += 1
        if got.title == self.awaited and self.counts[got.title] >= self.clients:
            self.done.set()


def _own_cpu() -> float:
    """CPU seconds of this process (the clients' loop, mostly, while a message is awaited)."""
    times = os.times()
    return times.user + times.system


async def _connect(clients: list[StreamClient], host: str, port: int) -> None:
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def one(client: StreamClient) -> None:
        async with gate:
            try:
                await client.connect(host, port)
            except Exception as exc:  # reported per client, the run goes on
                client.error = repr(exc)

    await asyncio.gather(*(one(c) for c in clients))


async def _listen(clients: list[StreamClient], collector: Collector) -> list[Any]:
    return [asyncio.ensure_future(c.listen(collector)) for c in clients if c.status == 200]


async def _close(clients: list[StreamClient], tasks: list[Any]) -> None:
    for task in tasks:
        task.cancel()
    for c in clients:
        c.close()
    await asyncio.sleep(0.5)


def _send(title: str, sender: Any) -> tuple[float, int, float]:
    """Save a message that notifies the admins.

    Returns ``perf_counter()`` just before the commit, the Event's id, and
    ``time.time()`` then (the clock of the worker's timestamps).
    """
    from django.db import transaction

    from benchmarks.chat.models import Message
    from offchat_notify import notify_admins

    with transaction.atomic():
        message = Message.objects.create(sender=sender, text=TEXT)
        event = notify_admins(VERB, title=title, actor=sender, target=message)
        wall, start = time.time(), time.perf_counter()
    return start, event.pk, wall


def _page_items_ms(event_id: int, user_ids: list[int], repeats: int = 5) -> float:
    """The web process's read of one page for its N users (``inbox.feed.page_items``,
    the query and the items), timed here in-process: median ms of ``repeats``."""
    from offchat_notify.inbox import feed

    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t = time.perf_counter()
        feed.page_items(event_id, user_ids)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times[1:])


def _split(samples: list[dict[str, Any]]) -> None:
    """Add ``delivered``: ms from the commit to the worker's ``delivered_at`` on the Event."""
    from offchat_notify.models import Event

    found = Event.objects.filter(pk__in=[x["event"] for x in samples])
    delivered = dict(found.values_list("pk", "delivered_at"))
    for x in samples:
        at = delivered.get(x["event"])
        x["delivered"] = None if at is None else (at.timestamp() - x.pop("wall")) * 1000


def stream_phase(
    web: WebServer,
    sessions: dict[int, str],
    plan: dict[str, Any],
    sender: Any,
    redis: Any,
    rng: random.Random,
    log: Any,
) -> dict[str, Any]:
    from django.conf import settings

    n = len(sessions)
    out: dict[str, Any] = {"clients": n, "samples": []}
    loop = Loop()
    try:
        # Warm: one client in and out, so the 0-connection figures include the code paths.
        first = next(iter(sessions.items()))
        warm = StreamClient(*first)
        loop.run(_connect([warm], web.host, web.port), 60)
        loop.run(_close([warm], []), 10)
        time.sleep(2)
        out["rss_0_mb"] = web.rss_mb()
        out["idle_0"] = web.idle(plan["idle_zero"])
        clients = [StreamClient(uid, key) for uid, key in sessions.items()]
        t0 = time.perf_counter()
        loop.run(_connect(clients, web.host, web.port), 600)
        out["connect_s"] = time.perf_counter() - t0
        failed = [c for c in clients if c.status != 200]
        out["refused"] = Counter(f"{c.status} {c.error}"[:120] for c in failed)
        if failed:
            log(f"live {n}: {len(failed)} clients refused: {dict(out['refused'])}")
            return out
        collector = Collector(n)
        tasks = loop.run(_listen(clients, collector), 60)
        time.sleep(3)
        out["rss_n_mb"] = web.rss_mb()
        # PostgreSQL publishes an idle backend's counts up to 10 s late: let the logins' pass.
        time.sleep(PG_STATS_DELAY)
        out["db_connections"] = web.database_connections()
        channel = settings.OFFCHAT_NOTIFY["LIVE_CHANNEL"]
        out["redis_subscribers"] = redis_subscribers(redis, channel)
        before = db_counters()
        out["idle_n"] = web.idle(plan["idle"])
        after = db_counters()
        out["idle_n"]["db_xact"] = after["xact_commit"] - before["xact_commit"]
        out["heartbeats"] = sum(c.heartbeats for c in clients)
        log(
            f"live {n}: connected in {out['connect_s']:.1f} s, RSS {out['rss_0_mb']:.1f} -> "
            f"{out['rss_n_mb']:.1f} MB, idle CPU {out['idle_n']['cpu_pct']:.2f} %"
        )
        for k in range(plan["warm"] + plan["samples"]):
            time.sleep(rng.uniform(0.5, 3.0) if k >= plan["warm"] else 1.0)
            title = f"live {n} #{k}"
            collector.arm(title)
            web_cpu, own_cpu = web.cpu_seconds(), _own_cpu()
            start, event_id, wall = _send(title, sender)
            complete = collector.done.wait(plan["timeout"])
            web_cpu, own_cpu = web.cpu_seconds() - web_cpu, _own_cpu() - own_cpu
            times = sorted(
                (e.at - start) * 1000 for c in clients for e in c.events if e.title == title
            )
            if k < plan["warm"]:
                continue
            out["samples"].append(
                {
                    "event": event_id,
                    "received": len(times),
                    "complete": complete,
                    "first": times[0] if times else None,
                    "median": times[len(times) // 2] if times else None,
                    "all": times[-1] if complete else None,
                    "wall": wall,
                    "web_cpu_ms": web_cpu * 1000,
                    "clients_cpu_ms": own_cpu * 1000,
                }
            )
            web.check_alive()
        _split(out["samples"])
        out["page_items_ms"] = _page_items_ms(out["samples"][-1]["event"], list(sessions))
        out["db_connections_after"] = web.database_connections()
        done = [x["all"] for x in out["samples"] if x["complete"]]
        log(
            f"live {n}: {len(done)}/{len(out['samples'])} complete, all clients median "
            f"{statistics.median(done) if done else float('nan'):.1f} ms"
        )
        out["events"] = {c.user_id: [(e.id, e.title) for e in c.events] for c in clients}
        out["disconnected"] = sum(1 for t in tasks if t.done())
        loop.run(_close(clients, tasks), 60)
    finally:
        loop.close()
    return out


def poll_phase(
    web: WebServer,
    sessions: dict[int, str],
    plan: dict[str, Any],
    sender: Any,
    rng: random.Random,
    log: Any,
) -> dict[str, Any]:
    interval, n = plan["interval"], len(sessions)
    clients = [PollClient(uid, key) for uid, key in sessions.items()]
    start = time.perf_counter() + 0.5
    quiet_from = start + interval + 0.5  # every client has polled once
    first_message = quiet_from + plan["quiet"]
    at = [first_message]
    for _ in range(plan["messages"] - 1):
        at.append(at[-1] + rng.uniform(1.1, 1.5) * interval)
    until = at[-1] + interval + 2
    loop = Loop()
    try:
        phases = [start + rng.uniform(0, interval) for _ in clients]

        async def poll_all() -> None:
            await asyncio.gather(
                *(
                    c.run(web.host, web.port, at, interval, until)
                    for c, at in zip(clients, phases, strict=True)
                )
            )

        running = asyncio.run_coroutine_threadsafe(poll_all(), loop.loop)
        time.sleep(max(0.0, quiet_from - time.perf_counter()))
        before = db_counters()
        quiet = web.idle(plan["quiet"])
        after = db_counters()
        quiet["db_xact"] = after["xact_commit"] - before["xact_commit"]
        quiet["db_sessions"] = after["sessions"] - before["sessions"]
        answers = [p for c in clients for p in c.polls if quiet_from <= p.answered < first_message]
        quiet["requests"] = len(answers)
        quiet["response_ms"] = sorted((p.answered - p.sent) * 1000 for p in answers)
        log(
            f"poll {n}: quiet CPU {quiet['cpu_pct']:.1f} %, {len(answers) / quiet['seconds']:.0f} "
            f"requests/s, {quiet['db_xact'] / quiet['seconds']:.0f} transactions/s"
        )
        commits = []
        for k, when in enumerate(at):
            time.sleep(max(0.0, when - time.perf_counter()))
            commits.append(_send(f"poll {n} #{k}", sender)[0])
        try:
            running.result(until - time.perf_counter() + REQUEST_TIMEOUT + 10)
        except TimeoutError:
            running.cancel()
            log(f"poll {n}: clients still waiting for answers at the end, cancelled")
    finally:
        loop.close()
    delays, missed = [], 0
    for c in clients:
        seen = [p for p in c.polls if p.answered < commits[0]]
        if not seen:
            missed += len(commits)
            continue
        base = seen[-1].unread
        for k, commit in enumerate(commits, start=1):
            hit = next((p for p in c.polls if p.answered > commit and p.unread >= base + k), None)
            if hit is None:
                missed += 1
            else:
                delays.append(hit.answered - commit)
    log(f"poll {n}: {len(delays)} delays, {missed} missed")
    return {
        "clients": n,
        "interval": interval,
        "quiet": quiet,
        "delays_s": delays,
        "missed": missed,
        "connections": sum(c.connections for c in clients),
        "polls": sum(len(c.polls) for c in clients),
        "skipped": sum(c.skipped for c in clients),
        "errors": Counter(e[:120] for c in clients for e in c.errors),
    }
