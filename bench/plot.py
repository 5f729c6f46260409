"""The report's plots: images/s and p50 latency against concurrency, one line per engine and
mode; and the model families' c=1 p50 and throughput, a bar per family and mode.

Drawn with matplotlib's Agg backend (no display), small enough to sit in the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

COLOURS = {"openvino": "tab:blue", "paddle": "tab:orange"}
STYLES = {"fast": "-", "standard": "--"}


def throughput(results: Iterable, path: Path) -> None:
    """Write the two-panel PNG for ``results`` (``run.ModeResult``s, each with its sweep)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = list(results)
    ticks = sorted({c for r in results for c in r.sweep})
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for r in results:
        levels = sorted(r.sweep)
        style = {"color": COLOURS.get(r.engine), "linestyle": STYLES.get(r.mode, ":"),
                 "marker": "o", "label": f"{r.engine} {r.mode}"}
        left.plot(levels, [r.sweep[c].throughput for c in levels], **style)
        right.plot(levels, [r.sweep[c].percentile(50) * 1e3 for c in levels], **style)
    for ax, title in ((left, "images/s"), (right, "p50 latency (ms)")):
        ax.set_title(title)
        ax.set_xlabel("concurrency (client threads)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(c) for c in ticks])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def families(results: dict, level: int, path: Path) -> None:
    """Write the two-panel bar chart of the model families: c=1 p50 and images/s at ``level``,
    a bar per mode in each family's group (``results``: (family, mode) -> ``run.ModeResult``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(f for f, _ in results))
    modes = list(dict.fromkeys(m for _, m in results))
    width = 0.8 / len(modes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, mode in enumerate(modes):
        xs = [k + (i - (len(modes) - 1) / 2) * width for k in range(len(names))]
        runs = [results.get((f, mode)) for f in names]
        left.bar(xs, [r.sweep[1].percentile(50) * 1e3 if r else 0 for r in runs], width,
                 label=mode, hatch="//" if mode == "standard" else None)
        right.bar(xs, [r.sweep[level].throughput if r else 0 for r in runs], width, label=mode,
                  hatch="//" if mode == "standard" else None)
    for ax, title in ((left, "c=1 p50 latency (ms)"), (right, f"images/s at concurrency {level}")):
        ax.set_title(title)
        ax.set_xticks(range(len(names)), names)
        ax.grid(alpha=0.3, axis="y")
        ax.legend()
    fig.savefig(path, dpi=90)
    plt.close(fig)
