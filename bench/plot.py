"""The report's plot: images/s and p50 latency against concurrency, one line per engine and mode.

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
