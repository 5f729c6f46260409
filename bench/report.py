"""What the benchmark scripts (``bench.run``, ``bench.ray_service``) print and write: progress
lines, the report's number formats and markdown tables, target rows, the machine and code
measured, and the hand-written notes a report keeps."""

from __future__ import annotations

import datetime
import hashlib
import operator
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES_HEADING = "## Notes"
MiB = 1 << 20
GiB = 1 << 30
STARTED = time.monotonic()  # the start of the benchmark: when it imported this module

Target = tuple[str, float, str, bool]  # what, measured, limit, met
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, "=": operator.eq}


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:5.0f} s] {msg}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds < 0.01 else f"{seconds * 1e3:.0f}"


def mib(n: int) -> str:
    return f"{n / MiB:.0f}"


def table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def errors(counts: Counter) -> str:
    """``0``, or the count with its kinds: ``3 (503: 2, ReadTimeout: 1)``."""
    kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({kinds})" if kinds else "0"


def heading(title: str, quick: bool, written: str, info: dict[str, str],
            setup: list[list]) -> list[str]:
    """A report's start: its title, the quick-run warning, who wrote it, and the table of the
    machine (``info``, its date aside) and the run's ``setup`` rows."""
    out = [f"# {title}", ""]
    if quick:
        out += ["**Quick run (smoke test): tiny counts, the figures mean nothing.**", ""]
    out += [written, ""]
    return out + table(["machine", ""], [[k, v] for k, v in info.items() if k != "date"] + setup)


def target(what: str, measured: float, limit: str) -> Target:
    """One target row; ``limit`` is an operator and a number, e.g. ``"<= 1.2"``."""
    op, bound = limit.split()
    return what, measured, limit, OPS[op](measured, float(bound))


def target_rows(rows: list[Target], engine: str | None = None) -> list[list]:
    """Targets as table rows, with the engine in front when given."""
    return [([engine] if engine else []) + [what, f"{v:.3g}" if isinstance(v, float) else v,
                                           limit, "pass" if ok else "**FAIL**"]
            for what, v, limit, ok in rows]


def version(*dists: str) -> str:
    """The installed version of the first of ``dists`` that is installed."""
    from importlib import metadata

    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return "not installed"


def code_version() -> str:
    """The commit measured, and whether ``pdserving/`` differs from it: a report must say which
    code it measured, and the package may be edited while the benchmark runs."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changes = git("diff", "HEAD", "--", "pdserving")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not changes:
        return head
    return f"{head} + uncommitted changes in pdserving/ (diff sha1 " \
           f"{hashlib.sha1(changes.encode()).hexdigest()[:8]})"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    return {"CPU": cpu, "cores": str(len(os.sched_getaffinity(0))), "memory": f"{memory:.1f} GiB",
            "Python": platform.python_version(), "OpenVINO": version("openvino"),
            "Paddle": version("paddlepaddle", "paddlepaddle-gpu"),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}


def kept_notes(path: Path) -> str:
    """The hand-written ``## Notes`` section of the previous report, if any."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    at = text.find("\n" + NOTES_HEADING)
    return text[at + 1:] if at >= 0 else ""
