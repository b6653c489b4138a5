"""run_all.py's figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.results import VENDORS, fanout_stats, median

STYLE = {
    "bare": ("black", "--"),
    "loop": ("tab:red", "-"),
    "bulk": ("tab:orange", "-"),
    "hq": ("tab:brown", "-"),
    "celery": ("tab:purple", "-"),
    "sync": ("tab:olive", ":"),
    "eager": ("tab:cyan", ":"),
    "redis": ("tab:green", "-"),
    "redis_bg": ("tab:green", "--"),
    "rabbitmq": ("tab:blue", "-"),
}
FANOUT_STYLE = {
    "offchat": "tab:green",
    "listed": "tab:olive",
    "bulk": "tab:orange",
    "insert_select": "tab:gray",
    "copy": "black",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def request_path(raws: list[dict[str, Any]], out: Path) -> Path:
    plt = _pyplot()
    raws = [r for r in raws if "request_path" in r]
    fig, axes = plt.subplots(1, len(raws), figsize=(6.5 * len(raws), 4.8), squeeze=False)
    for ax, raw in zip(axes[0], raws, strict=True):
        rows = raw["request_path"]
        sizes = sorted({r["size"] for r in rows if r["size"]})
        for kind, (color, line) in STYLE.items():
            mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["size"] or 0)
            if not mine:
                continue
            label = mine[0]["label"]
            if kind == "bare":
                y = median(mine[0]["samples"]) * 1000
                ax.plot(sizes, [y] * len(sizes), color=color, linestyle=line, label=label)
                continue
            xs = [r["size"] for r in mine]
            ys = [median(r["samples"]) * 1000 for r in mine]
            ax.plot(xs, ys, color=color, linestyle=line, marker="o", markersize=3, label=label)
        ax.set(xscale="log", yscale="log", xlabel="admins notified", ylabel="median ms per request")
        ax.set_title(f"Request path, {VENDORS[raw['vendor']]}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    return _save(fig, plt, out / "request_path.png")


def fanout(raws: list[dict[str, Any]], out: Path) -> Path:
    from benchmarks.fanout import LABELS

    plt = _pyplot()
    raws = [r for r in raws if r.get("fanout")]
    fig, axes = plt.subplots(2, len(raws), figsize=(6.5 * len(raws), 8), squeeze=False)
    for col, raw in enumerate(raws):
        stats = fanout_stats(raw)
        sizes = sorted({s for s, _m in stats})
        for method, color in FANOUT_STYLE.items():
            xs = [s for s in sizes if (s, method) in stats]
            if not xs:
                continue
            rates = [stats[s, method]["rate"] for s in xs]
            rss = [stats[s, method]["rss"] for s in xs]
            for row, ys in ((0, rates), (1, rss)):
                axes[row][col].plot(xs, ys, marker="o", color=color, label=LABELS[method])
            # A run stopped at the time cap: its rows/s is an upper bound, drawn hollow.
            capped = [(s, stats[s, method]["rate"]) for s in xs if stats[s, method]["bound"]]
            if capped:
                axes[0][col].scatter(
                    *zip(*capped, strict=True), s=90, facecolors="white", edgecolors=color, zorder=3
                )
        name = VENDORS[raw["vendor"]]
        axes[0][col].set(xscale="log", yscale="log", ylabel="rows/s (median; hollow: < bound)")
        axes[0][col].set_title(f"Fan-out in one process, {name}")
        axes[1][col].set(xscale="log", yscale="log", xlabel="recipients", ylabel="peak RSS, MB")
        axes[1][col].axhline(200, color="red", linewidth=0.8, linestyle="--", label="200 MB")
        for row in (0, 1):
            axes[row][col].grid(True, which="both", alpha=0.3)
            axes[row][col].legend(fontsize=7)
    return _save(fig, plt, out / "fanout.png")


def end_to_end(raws: list[dict[str, Any]], out: Path) -> Path:
    plt = _pyplot()
    raws = [r for r in raws if r.get("end_to_end")]
    groups = sorted({(r["size"], r["processes"]) for raw in raws for r in raw["end_to_end"]})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, size in zip(axes, sorted({s for s, _p in groups}), strict=False):
        labels, width = [], 0.38
        for i, raw in enumerate(raws):
            mine = sorted(
                (r for r in raw["end_to_end"] if r["size"] == size), key=lambda r: r["processes"]
            )
            xs = [j + i * width for j in range(len(mine))]
            ys = [median(r["samples"]) * 1000 for r in mine]
            ax.bar(xs, ys, width=width, label=VENDORS[raw["vendor"]])
            labels = [f"{r['processes']} worker process(es)" for r in mine]
        ax.set_xticks([j + width / 2 for j in range(len(labels))], labels)
        if size == 1000:
            ax.axhline(100, color="red", linewidth=0.8, linestyle="--", label="100 ms target")
        ax.set(ylabel="median ms, commit to all rows present")
        ax.set_title(f"End to end, {size:,} recipients, dramatiq on Redis")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, plt, out / "end_to_end.png")


def _save(fig: Any, plt: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(raws: list[dict[str, Any]], out: Path) -> list[Path]:
    drawn = []
    if any("request_path" in r for r in raws):
        drawn.append(request_path(raws, out))
    if any(r.get("fanout") for r in raws):
        drawn.append(fanout(raws, out))
    if any(r.get("end_to_end") for r in raws):
        drawn.append(end_to_end(raws, out))
    return drawn
