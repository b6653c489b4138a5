"""run_all.py's report: tables (Markdown and CSV) and the targets, from the suites' JSON.

Every ratio compares medians measured in the same run on the same database:
the request-path variants were interleaved call by call, the fan-out methods
run by run.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks import harness

VENDORS = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
#: The request path of offchat-notify in production: the dramatiq backend.
PRODUCTION = {
    "redis": "Redis",
    "redis_bg": "Redis, DISPATCH background",
    "rabbitmq": "RabbitMQ",
}
Table = tuple[list[str], list[list[Any]]]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


# Request path


def request_table(raw: dict[str, Any]) -> Table:
    rows = raw["request_path"]
    bare = next(r for r in rows if r["kind"] == "bare")
    celery = {r["size"]: r for r in rows if r["kind"] == "celery"}
    body = []
    for r in sorted(rows, key=lambda r: (r["size"] or 0, r["kind"] != "bare")):
        ms = [s * 1000 for s in r["samples"]]
        by_celery = celery.get(r["size"])
        body.append(
            [
                r["label"],
                "" if r["size"] is None else f"{r['size']:,}",
                len(ms),
                fmt(median(ms), 3),
                fmt(harness.quantile(ms, 0.99), 3),
                f"{median(r['samples']) / median(bare['samples']):.2f}x",
                ""
                if by_celery is None
                else f"{median(r['samples']) / median(by_celery['samples']):.2f}x",
            ]
        )
    head = ["variant", "admins", "timed calls", "median ms", "p99 ms", "x bare save", "x Celery"]
    return head, body


# Fan-out


def fanout_stats(raw: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """Per (size, method): median seconds and rows/s of the finished runs, the largest
    peak RSS, and the run count. A method none of whose runs finished within the time
    cap gets, as rows/s, the upper bound size / seconds run, with ``bound`` set to "<"."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in raw.get("fanout", []):
        groups.setdefault((r["size"], r["method"]), []).append(r)
    stats = {}
    for (size, method), runs in groups.items():
        done = [r["seconds"] for r in runs if r.get("finished", True)]
        seconds = median(done) if done else max(r["seconds"] for r in runs)
        stats[size, method] = {
            "seconds": seconds,
            "rate": size / seconds,
            "bound": "" if done else "<",
            "rows": max(r["rows"] for r in runs),
            "rss": max(r["peak_rss_mb"] for r in runs),
            "runs": len(runs),
        }
    return stats


def ceiling(stats: dict[tuple[int, str], dict[str, Any]], size: int) -> dict[str, Any] | None:
    """The faster of the two raw ways at ``size``."""
    found = [stats[size, m] for m in ("insert_select", "copy") if (size, m) in stats]
    return max(found, key=lambda s: s["rate"], default=None)


def ratio(top: dict[str, Any] | None, bottom: dict[str, Any] | None) -> tuple[float, str] | None:
    """top's rows/s over bottom's, and "<", ">" or "?" when a bound is involved."""
    if top is None or bottom is None:
        return None
    sign = {("", ""): "", ("<", ""): "<", ("", "<"): ">"}.get((top["bound"], bottom["bound"]), "?")
    return top["rate"] / bottom["rate"], sign


def fanout_table(raws: list[dict[str, Any]]) -> Table:
    from benchmarks.fanout import LABELS

    def show(r: tuple[float, str] | None, digits: int) -> str:
        return "n/a" if r is None else f"{r[1]}{r[0]:.{digits}f}x"

    body = []
    for raw in raws:
        stats = fanout_stats(raw)
        for size in sorted({s for s, _m in stats}):
            bulk, top = stats.get((size, "bulk")), ceiling(stats, size)
            for method in LABELS:
                s = stats.get((size, method))
                if s is None:
                    continue
                seconds, rate = fmt(s["seconds"]), f"{s['rate']:,.0f}"
                if s["bound"]:
                    seconds = f"> {s['seconds']:.0f} (stopped, {s['rows']:,} rows written)"
                    rate = f"< {rate}"
                body.append(
                    [
                        VENDORS[raw["vendor"]],
                        f"{size:,}",
                        LABELS[method],
                        s["runs"],
                        seconds,
                        rate,
                        show(ratio(s, bulk), 1),
                        show(ratio(s, top), 2),
                        f"{s['rss']:.0f}",
                    ]
                )
    head = [
        "database",
        "recipients",
        "method",
        "runs",
        "median s",
        "rows/s",
        "x bulk_create",
        "x ceiling",
        "peak RSS MB",
    ]
    return head, body


# End to end


def e2e_table(raws: list[dict[str, Any]]) -> Table:
    body = []
    for raw in raws:
        for r in raw.get("end_to_end", []):
            ms = [s * 1000 for s in r["samples"]]
            body.append(
                [
                    VENDORS[raw["vendor"]],
                    f"{r['size']:,}",
                    r["processes"],
                    len(ms),
                    fmt(median(ms), 1),
                    fmt(harness.quantile(ms, 0.99), 1),
                    fmt(min(ms), 1),
                    f"{r['worker_peak_rss_mb']:.0f}",
                ]
            )
    head = [
        "database",
        "recipients",
        "worker processes",
        "samples",
        "median ms",
        "p99 ms",
        "min ms",
        "worker peak RSS MB",
    ]
    return head, body


# Targets


def verdict(value: float, limit: float, at_most: bool, sign: str = "") -> str:
    """PASS or MISS. ``sign`` "<" / ">": the true value is below / above ``value`` (a run
    hit the time cap), which settles the verdict only on one side."""
    ok = value <= limit if at_most else value >= limit
    if not sign:
        return "PASS" if ok else "MISS"
    beyond_is_better = sign == ("<" if at_most else ">")
    if ok and beyond_is_better:
        return "PASS"
    if not ok and sign in "<>" and not beyond_is_better:
        return "MISS"
    return "inconclusive (a run hit the time cap)"


def targets(raws: list[dict[str, Any]], seed: int = 1) -> Table:
    """One row per target and database: what was measured, its 95% CI, PASS or MISS."""
    rng = random.Random(seed)
    body: list[list[Any]] = []
    for raw in raws:
        db = VENDORS[raw["vendor"]]
        rows = raw.get("request_path", [])
        bare = [r["samples"] for r in rows if r["kind"] == "bare"]
        celery = {r["size"]: r["samples"] for r in rows if r["kind"] == "celery"}
        for kind, broker in PRODUCTION.items():
            mine = {r["size"]: r["samples"] for r in rows if r["kind"] == kind}
            for name, limit in (("a bare save", 2.0), ("Celery", 0.75)):
                pairs = {
                    s: (x, bare[0] if name != "Celery" else celery[s]) for s, x in mine.items()
                }
                if not pairs:
                    continue
                size = max(pairs, key=lambda s: median(pairs[s][0]) / median(pairs[s][1]))
                top, bottom = pairs[size]
                value = median(top) / median(bottom)
                low, high = harness.ratio_interval(top, bottom, rng, rounds=400)
                body.append(
                    [
                        f"request path, dramatiq on {broker}: <= {limit}x {name} at every size",
                        db,
                        f"{value:.2f}x",
                        f"{low:.2f}-{high:.2f}x",
                        verdict(value, limit, True),
                        f"worst at {size:,} admins",
                    ]
                )
        stats = fanout_stats(raw)
        for name, limit in (("the inline bulk_create", 5.0), ("the raw ceiling", 0.7)):
            found = {}
            for size in sorted({s for s, _m in stats}):
                base = stats.get((size, "bulk")) if "bulk" in name else ceiling(stats, size)
                r = ratio(stats.get((size, "offchat")), base)
                if r is not None:
                    found[size] = r
            if not found:
                continue
            size = min(found, key=lambda s: found[s][0])
            value, sign = found[size]
            mark = verdict(value, limit, False, sign)
            if raw["vendor"] != "postgresql":
                mark = f"({mark}; the target is PostgreSQL's)"
            body.append(
                [
                    f"fan-out, one job: >= {limit}x {name} at every size",
                    db,
                    f"{sign}{value:.2f}x",
                    "",
                    mark,
                    f"worst at {size:,} recipients",
                ]
            )
        for r in raw.get("end_to_end", []):
            if r["size"] == 1000 and r["processes"] == 1:
                value = median(r["samples"]) * 1000
                body.append(
                    [
                        "end to end, 1,000 admins, one worker on Redis: median < 100 ms",
                        db,
                        f"{value:.1f} ms",
                        "",
                        verdict(value, 100, True),
                        "",
                    ]
                )
        big = stats.get((1_000_000, "offchat"))
        body.append(
            [
                "1,000,000 recipients: peak RSS < 200 MB per worker process",
                db,
                "n/a" if big is None else f"{big['rss']:.0f} MB",
                "",
                "not measured" if big is None else verdict(big["rss"], 200, True),
                ""
                if big is None
                else "one job, PARALLEL_CHUNK=None"
                + (" (stopped at the time cap; peak while it ran)" if big["bound"] else ""),
            ]
        )
    return ["target", "database", "measured", "95% CI", "verdict", "note"], body


# Output


def markdown(table: Table) -> str:
    head, body = table
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def write_csv(path: Any, table: Table) -> None:
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(table[0])
        writer.writerows(table[1])
