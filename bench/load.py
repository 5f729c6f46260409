"""The services under test as subprocesses (with the engine settings they take by default, and
SIGTERM made to stop them), the HTTP load generator, and their memory.

A service is started as a user starts it (the top-level scripts, ``python -m pdserving.serve``)
with ``--engine`` on free 127.0.0.1 ports, and counts as ready when ``GET /ready`` answers 200;
the engines it then reports (``/metrics``, the det server's ready line) are checked, since a model
OpenVINO cannot read falls back to Paddle and would make a comparison of Paddle with itself. Its
memory is
summed over all its processes (the web process, its model workers and servers, and in standard
mode the det model server), sampled in a background thread. Each process counts its PSS
(proportional set size): Paddle's shared library pages, mapped by every model worker, are in
memory once, and a sum of RSS would count them once per process.

Memory is sampled only during runs that are not timed. Reading PSS makes the kernel walk each
process's page tables: one sample takes 20 ms for the fast service on OpenVINO (one process),
34 ms on Paddle (the web process and two model workers), 55 ms for the 12 processes of the Ray
Serve service. Sampled every 0.2 s during the timed runs, as it was until 2026-11-30, that CPU
was taken from the service under test: fast c=1 p50 +8-11%, Ray's +27-47%; the more processes,
the more it cost.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import psutil

from pdserving.engine import EngineOptions, engine_options
from pdserving.launcher import ServerProcess, model_server
from pdserving.net import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
MODES = {"fast": "ocr_local_server.py", "standard": "ocr_web_server.py"}
# First ports tried: away from the defaults (9292, 9293, 12000) and from the test suite's.
DET_PORT, WEB_PORT, MODEL_PORT = 18000, 18100, 18200
REQUEST_TIMEOUT = 120.0
logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request (paddle logs INFO)


def exit_on_sigterm() -> None:
    """SIGTERM as Ctrl-C: unwind, so every started server is stopped. Again after Paddle has
    made a predictor in this process: it installs its own handler, which aborts at once."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def service_settings(engine: str) -> EngineOptions:
    """The instances (OpenVINO streams, or Paddle worker processes) and math threads the OCR
    scripts use by default with ``--engine engine`` on this machine: each engine sizes its own."""
    return engine_options(engine).sized()


def pss(pid: int) -> int:
    """A process's PSS in bytes, from /proc (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) << 10 for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def process_trees(roots: list[psutil.Process]) -> list[psutil.Process]:
    """Each of ``roots`` and its descendants; a root that has gone is left out."""
    procs = []
    for root in roots:
        try:
            procs += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return procs


class MemorySampler:
    """Summed PSS of some process trees every ``interval`` seconds inside ``sampled()``, kept as
    (time, bytes)."""

    def __init__(self, pids: list[int], interval: float = 0.2):
        self.roots = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._on = threading.Event()  # set inside sampled()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def current(self) -> int:
        return sum(pss(p.pid) for p in process_trees(self.roots))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._on.is_set():
                self.samples.append((time.monotonic(), self.current()))

    @contextlib.contextmanager
    def sampled(self) -> Iterator[float]:
        """Sample while the block runs, from one sample at its start; yields that start (a
        ``time.monotonic()`` value, for ``peak``)."""
        began = time.monotonic()
        self.samples.append((began, self.current()))
        self._on.set()
        try:
            yield began
        finally:
            self._on.clear()

    def peak(self, since: float = 0.0) -> int:
        """The highest sample taken at or after ``since`` (a ``time.monotonic()`` value)."""
        return max((rss for t, rss in self.samples if t >= since), default=self.current())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Service:
    """One OCR service ("fast" or "standard") on one engine ("openvino", "paddle") with all its
    processes, started by ``start``."""

    def __init__(self, mode: str, engine: str, model_root: Path):
        self.mode = mode
        self.engine = engine
        self.name = f"{mode} OCR service ({engine})"
        self.model_root = model_root
        self.processes: list[ServerProcess] = []
        self.url = ""
        self.rss: MemorySampler | None = None
        self.det_ready_s = 0.0  # standard mode: launch -> det model server ready

    def start(self) -> float:
        """Launch and wait until ``GET /ready`` is 200; returns seconds from launch to ready.

        Standard mode starts the det model server first, then the web service, as a user would;
        both are counted.
        """
        launched = time.perf_counter()
        engine = ["--engine", self.engine]
        args = [sys.executable, str(ROOT / MODES[self.mode]), "cpu", "--host", "127.0.0.1",
                "--model_root", str(self.model_root), *engine]
        if self.mode == "standard":
            det = self._launch(model_server(self.model_root / "ocr_det_model",
                                            free_port(DET_PORT), extra_args=engine))
            self.det_ready_s = time.perf_counter() - launched
            args += ["--det_endpoints", det.endpoint, "--model_port", str(free_port(MODEL_PORT))]
        port = free_port(WEB_PORT)
        self._launch(ServerProcess(args + ["--port", str(port)], self.name, f"127.0.0.1:{port}"))
        self.url = f"http://127.0.0.1:{port}/ocr/prediction"
        wait_ready(f"http://127.0.0.1:{port}", 120.0, self.name)
        ready_s = time.perf_counter() - launched
        self.rss = MemorySampler([p.proc.pid for p in self.processes])
        self._check_engines(f"http://127.0.0.1:{port}")
        return ready_s

    def _check_engines(self, base: str) -> None:
        """Raise unless every model runs on the engine asked for."""
        engines = metric_engines(base)
        engines |= {p.engine for p in self.processes[:-1] if p.engine}  # the det model server
        if engines - {self.engine}:
            raise RuntimeError(f"{self.name}: models run on {', '.join(sorted(engines))}")

    def _launch(self, proc: ServerProcess) -> ServerProcess:
        self.processes.append(proc)  # before start, so stop() covers a half-started service
        return proc.start(timeout=120)

    def stop(self) -> None:
        """Stop every process, web service first (it stops its own model server)."""
        if self.rss:
            self.rss.stop()
        for proc in reversed(self.processes):
            proc.stop(grace=15)
        self.processes.clear()

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class LoadResult:
    concurrency: int
    latencies: list[float]  # seconds, successful requests only
    errors: Counter         # failed requests by kind: HTTP status or exception name
    wall: float             # seconds, first request sent to last answer
    peak_rss: int = 0       # bytes, during this run

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Successful images per second."""
        return len(self.latencies) / self.wall if self.wall else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def metric_engines(base: str) -> set[str]:
    """The engines the service at ``base`` reports running its models (``/metrics``)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return set(re.findall(r'^pdserving_model_engine_info\{[^}]*engine="(\w+)"', text,
                          re.MULTILINE))


def wait_ready(base: str, timeout: float, name: str) -> None:
    """Wait until the service at ``base`` answers ``GET /ready`` with 200."""
    def ok() -> bool:
        try:
            return httpx.get(f"{base}/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ok, timeout, f"{name}: {base}/ready 200")


def run_load(url: str, bodies: list[bytes], concurrency: int, total: int) -> LoadResult:
    """Send ``total`` requests (``bodies`` in turn) from ``concurrency`` threads, each with its
    own keep-alive connection, each sending its next request as soon as the last is answered."""
    counter = itertools.count()
    lock = threading.Lock()
    stop = threading.Event()  # set on Ctrl-C: workers finish their request and quit
    latencies: list[float] = []
    errors: Counter = Counter()

    def worker() -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT,
                          headers={"Content-Type": "application/json"}) as client:
            while not stop.is_set() and (i := next(counter)) < total:
                start = time.perf_counter()
                try:
                    status = client.post(url, content=bodies[i % len(bodies)]).status_code
                    error = "" if status == 200 else str(status)
                except httpx.HTTPError as e:
                    error = type(e).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    if error:
                        errors[error] += 1
                    else:
                        latencies.append(elapsed)

    start = time.perf_counter()
    pool = ThreadPoolExecutor(concurrency)
    try:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    finally:
        stop.set()
        pool.shutdown()
    return LoadResult(concurrency, latencies, errors, time.perf_counter() - start)


def run_level(url: str, bodies: list[bytes], concurrency: int, total: int,
              rss: MemorySampler | None = None) -> LoadResult:
    """One concurrency level: a timed ``run_load``, then, given ``rss``, the same again untimed
    with memory sampled (see the module's docstring); the timed result with that run's peak."""
    result = run_load(url, bodies, concurrency, total)
    if rss:
        with rss.sampled() as began:
            run_load(url, bodies, concurrency, total)
        result.peak_rss = rss.peak(since=began)
    return result


def first_and_steady(url: str, body: bytes, repeats: int) -> tuple[float, float]:
    """The first request's latency on a just-ready service, and the median of ``repeats`` more
    of the same request (the steady latency for that image)."""
    with httpx.Client(timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/json"}) as client:
        times = []
        for _ in range(1 + repeats):
            start = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])
