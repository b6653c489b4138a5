"""live_stream.py's report: the Markdown tables, the issue's targets, the checks."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import harness

TARGET_MS = 100.0  # issue #14: commit to all 1,000 clients holding the event, median
TARGET_KB = 100.0  # issue #14: memory per idle connection


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), harness.quantile(values, 0.95), max(values)


def stream_rows(sizes: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in sizes:
        st = s["stream"]
        done = [x["all"] for x in st["samples"] if x["complete"]]
        if not done:
            rows.append([f"{st['clients']:,}", "0"] + [""] * 9)
            continue
        med, p95, top = _stats(done)
        first = _median(st["samples"], "first")
        middle = _median(st["samples"], "median")
        rows.append(
            [
                f"{st['clients']:,}",
                f"{len(done)}/{len(st['samples'])}",
                f"{med:.1f}",
                f"{p95:.1f}",
                f"{top:.1f}",
                f"{first:.1f}",
                f"{middle:.1f}",
                _f(_median(st["samples"], "delivered")),
                _f(_median(st["samples"], "web_cpu_ms")),
                _f(_median(st["samples"], "clients_cpu_ms")),
                _f(st.get("page_items_ms")),
            ]
        )
    return rows


def _median(samples: list[dict[str, Any]], key: str) -> float | None:
    values = [x[key] for x in samples if x.get(key) is not None]
    return statistics.median(values) if values else None


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def per_connection_kb(st: dict[str, Any]) -> float | None:
    if "rss_n_mb" not in st:
        return None
    return (st["rss_n_mb"] - st["rss_0_mb"]) * 1024 / st["clients"]


def _rate(window: dict[str, Any]) -> str:
    return f"{window['db_xact'] / window['seconds']:.1f}"


def background(st: dict[str, Any]) -> float:
    """Transactions/s of the database with N idle streams (the worker, this process)."""
    idle = st.get("idle_n")
    return float(idle["db_xact"]) / idle["seconds"] if idle else 0.0


def idle_rows(sizes: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in sizes:
        st = s["stream"]
        if "rss_n_mb" not in st:
            continue
        idle = st["idle_n"]
        rows.append(
            [
                f"{st['clients']:,}",
                f"{st['rss_0_mb']:.1f}",
                f"{st['rss_n_mb']:.1f}",
                f"{per_connection_kb(st):.1f}",
                f"{st['idle_0']['cpu_pct']:.2f}",
                f"{idle['cpu_s']:.2f} in {idle['seconds']:.0f} s ({idle['cpu_pct']:.2f} %)",
                _rate(idle),
                f"{st['db_connections']} / {st.get('db_connections_after', '?')}",
                str(st["redis_subscribers"]),
                f"{st['connect_s']:.1f}",
            ]
        )
    return rows


def poll_rows(sizes: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in sizes:
        p = s.get("poll")
        if not p:
            continue
        q = p["quiet"]
        rate = q["requests"] / q["seconds"]
        extra = q["db_xact"] / q["seconds"] - background(s["stream"])
        d = p["delays_s"]
        mean = statistics.mean(d) if d else float("nan")
        med, p95, top = _stats(d) if d else (float("nan"),) * 3
        rows.append(
            [
                f"{p['clients']:,}",
                f"{p['interval']:g}",
                f"{mean:.2f}",
                f"{med:.2f}",
                f"{p95:.2f}",
                f"{top:.2f}",
                str(p["missed"]),
                str(sum(p["errors"].values())),
                f"{rate:.1f} of {p['clients'] / p['interval']:.0f}",
                _answer_ms(q.get("response_ms", [])),
                f"{q['db_xact'] / q['seconds']:.1f}",
                f"{extra / rate:.1f}" if rate else "",
                f"{q['db_sessions'] / q['seconds']:.1f}",
                f"{q['cpu_s']:.2f} in {q['seconds']:.0f} s ({q['cpu_pct']:.1f} %)",
            ]
        )
    return rows


def _answer_ms(values: list[float]) -> str:
    if not values:
        return ""
    return f"{statistics.median(values):.0f} / {harness.quantile(values, 0.95):.0f}"


def targets(sizes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    out = []
    for s in sizes:
        st = s["stream"]
        done = [x["all"] for x in st["samples"] if x["complete"]]
        if st["clients"] >= 1000 and done:
            med = statistics.median(done)
            out.append(
                (
                    f"commit -> all {st['clients']:,} clients hold the event, median < 100 ms",
                    f"{med:.1f} ms",
                    "PASS" if med < TARGET_MS else "MISS",
                )
            )
        kb = per_connection_kb(st)
        if kb is not None:
            out.append(
                (
                    f"idle connection memory < 100 KB ({st['clients']:,} connections)",
                    f"{kb:.1f} KB",
                    "PASS" if kb < TARGET_KB else "MISS",
                )
            )
    return out


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _pool(result: dict[str, Any]) -> str:
    pool = result.get("pool", 0)
    if not pool:
        return "the web process opens a database connection per request, Django's default"
    return f"the web process's connections in a pool of at most {pool}"


def markdown(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    lines = [
        "# Live stream: N clients on one ASGI process\n",
        f"Command: `{result['command']}`; {result['date']}; run time {result['minutes']:.1f} min; "
        f"load average (1 min) during the run {result.get('load_range', '?')}; "
        f"offchat-notify source: {result['source']}.\n",
        "One uvicorn process (`uvicorn benchmarks.live_asgi:application`, default settings), one "
        "worker (`rundramatiq --processes 1 --threads 4`, the library's RedisBroker), "
        f"PostgreSQL ({_pool(result)}); the clients are asyncio connections in the benchmark "
        "process, on the same 2-core machine.\n",
        "## Stream: commit to the clients holding the event (ms)\n",
        "Each message follows 0.5-3 s of idle; the clock starts just before its commit and "
        "stops, per client, when the bytes completing the event are read. Worker delivered: "
        "to the Event's `delivered_at` (the worker's clock). CPU / message (ms): the web "
        "process's and the benchmark's (the clients' loop) while the message was awaited. Page "
        "read: what the web process does first for each published page, "
        "`offchat_notify.inbox.feed.page_items()` for the N connected users (one query and "
        "the items), timed in the benchmark process (median of 5).\n",
    ]
    lines += table(
        [
            "clients",
            "complete",
            "all: median",
            "all: p95",
            "all: max",
            "first client (median)",
            "median client (median)",
            "worker delivered (median)",
            "web CPU / message",
            "clients' CPU / message",
            "page read, in-process",
        ],
        stream_rows(sizes),
    )
    lines += [
        "",
        "## Idle connections\n",
        "RSS of the uvicorn process with N open streams minus with none, per connection; "
        "its CPU with none and with N (heartbeats included); the database's committed "
        "transactions per second with N idle streams; the web process's PostgreSQL "
        "connections (idle, and after the messages) and the live channel's Redis "
        "subscribers with N streams open.\n",
    ]
    lines += table(
        [
            "clients",
            "RSS 0 (MB)",
            "RSS N (MB)",
            "KB / connection",
            "CPU 0 conn. (%)",
            "CPU N conn. (s)",
            "DB xact/s",
            "DB conns, idle / after messages",
            "Redis subs",
            "connect all (s)",
        ],
        idle_rows(sizes),
    )
    lines += [
        "",
        "## The alternative: polling `unread/` every 5 s\n",
        "Delay: from a message's commit until a client's poll answers with the new count "
        "(all clients, all messages). Load: over a quiet window with no message; xact / "
        "request: the database's transactions per poll, less its rate with the N streams "
        "idle. A client polls on one connection, one request at a "
        "time, and skips a tick that passed while it waited, so an overloaded server answers "
        "fewer requests than offered (N / 5 s) and slower.\n",
    ]
    lines += table(
        [
            "clients",
            "every (s)",
            "delay mean (s)",
            "median",
            "p95",
            "max",
            "missed",
            "failed polls",
            "requests/s (of offered)",
            "answer ms (median / p95)",
            "DB xact/s",
            "xact / request",
            "DB sessions/s",
            "web CPU",
        ],
        poll_rows(sizes),
    )
    errors = {k: v for s in sizes for k, v in (s.get("poll") or {}).get("errors", {}).items()}
    lines += [f"\nFailed polls: {v} x `{k}`" for k, v in errors.items()]
    lines += ["", "## Targets (issue #14)\n", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(sizes)]
    lines += ["", "## Checks\n"]
    lines += [f"- {'ok' if ok else 'FAILED'}: {text}" for ok, text in result["checks"]]
    lines += ["", "## Versions\n"]
    lines += [f"- {k}: {v}" for k, v in result["versions"]]
    return "\n".join(lines) + "\n"
