"""``python -m bench.ray_service``: the OCR service on Ray Serve against the fast service, on one
node, in the same run (issue 9).

Per round: the fast service (``ocr_local_server.py cpu``, OpenVINO) and each Ray variant in turn,
each started from cold, measured at concurrency 1 and 4 over the bench image set (after one
untimed pass), then stopped. A Ray variant runs on a local one-node cluster of its own
(``ray.init(address="local", num_cpus=2)``) with the shipped Serve config
(``deploy/ray/serve_config.yaml``) and the variant's overrides; its processes' memory (PSS) is
read by process title after the load, and the cluster is shut down and checked to be gone. Rounds
alternate the order, so that drift on a shared machine shows. The ratios to the fast service are
computed within each round. The report goes to ``bench/RESULTS_RAY.md``; a ``## Notes`` section
already in that file is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

from bench import data
from bench.load import (LoadResult, MemorySampler, Service, exit_on_sigterm, metric_engines,
                        process_trees, pss, run_level, run_load, service_settings, wait_ready)
from bench.report import (code_version, errors, heading, kept_notes, log, machine, mib, ms, table,
                          target, target_rows, version)
from pdserving.net import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVE_CONFIG = ROOT / "deploy" / "ray" / "serve_config.yaml"
CONCURRENCY = (1, 4)
CLUSTER_CPUS = 2
RAY_PORT = 18400  # first HTTP port tried for the Ray proxy (bench.load's services use 18000-18299)
MODELS = ("ocr_det_model", "ocr_rec_model", "ocr_cls_model")
# The targets of issue 9, as ratios Ray / fast within one round.
P50_LIMIT = "<= 1.15"
THROUGHPUT_LIMIT = ">= 0.85"
PROBE_CALLS = 5
# Probe arrays: a det page at its largest input, a full rec batch at the floor width.


@dataclass(frozen=True)
class Variant:
    """A Ray Serve config: the shipped one with application arguments and deployment fields
    replaced (a field set to ``None`` is removed)."""

    name: str
    what: str
    args: dict = field(default_factory=dict)
    deployments: dict[str, dict] = field(default_factory=dict)

    def config(self, port: int, model_root: Path) -> dict:
        from pdserving.ray_app import load_config, with_deployments

        config = load_config(SERVE_CONFIG, port=port, model_root=str(model_root), **self.args)
        return with_deployments(config, **self.deployments)


FIXED = {"autoscaling_config": None, "num_replicas": 1}
VARIANTS = {v.name: v for v in (
    Variant("shipped", "the shipped config as is: det and rec autoscaling 1-4 replicas "
                       "(target 2 ongoing), num_cpus 1 each, app arg threads 2"),
    Variant("fixed-2t", "1 det + 1 rec replica (no autoscaling), num_cpus 1 each, app arg "
                        "threads 2 (each replica uses both cores, like the fast service's one "
                        "OpenVINO stream of 2 threads)",
            {"threads": 2}, {"det": FIXED, "rec": FIXED}),
    Variant("fixed-1t", "1 det + 1 rec replica (no autoscaling), num_cpus 1 each, 1 math "
                        "thread each (the shipped threading without autoscaling)",
            {}, {"det": FIXED, "rec": FIXED}),
    Variant("auto-2t", "the shipped autoscaling (det and rec 1-4 replicas) with app arg "
                       "threads 2", {"threads": 2}),
)}
DEFAULT_VARIANTS = "shipped,fixed-2t"


@dataclass
class Measured:
    """One service (fast, or a Ray variant) in one round."""

    name: str
    round: int
    loads: dict[int, LoadResult] = field(default_factory=dict)
    start_s: float = 0.0    # fast: launch -> /ready 200; Ray: ray.init -> connected
    ready_s: float = 0.0    # Ray: deploy (run_config) -> /ready 200
    peak_pss: int = 0       # all its processes summed, over the whole run
    memory: list[tuple[str, int, int]] = field(default_factory=list)  # (title, pid, PSS) after
    # deployment -> replica state -> most replicas seen in that state during the loads
    replicas: dict[str, dict[str, int]] = field(default_factory=dict)
    health_s: float = 0.0   # median GET /health round trip
    probe: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> (handle, local)
    noop_s: float = 0.0     # median handle round trip of det's ``where`` (no array)
    leftover: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "fast" if self.name == "fast" else f"ray {self.name}"


# ---- process titles and memory ---------------------------------------------------------------

def title(proc: psutil.Process) -> str:
    """A Ray process's title: ``ray::...`` as the worker sets it, the binary's name (raylet,
    gcs_server), or ``python <script>`` for Ray's Python daemons."""
    try:
        cmdline = proc.cmdline()
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if cmdline and cmdline[0].startswith("ray::"):
        return cmdline[0].split()[0]
    scripts = [Path(a).name for a in cmdline[1:] if a.endswith(".py")]
    if name.startswith("python") or (cmdline and "python" in Path(cmdline[0]).name):
        return f"python {scripts[0]}" if scripts else "python"
    return name


GROUP_ORDER = ("ray::ServeReplica:ocr:det", "ray::ServeReplica:ocr:rec",
               "ray::ServeReplica:ocr:cls", "ray::ServeReplica:ocr:ingress",
               "ray::ServeController", "ray::ProxyActor", "raylet", "gcs_server")


def group_memory(rows: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """(group, processes, PSS summed) in a fixed order: the replicas, Serve's actors, raylet,
    gcs_server, then everything else, each under its own title."""
    groups: dict[str, list[int]] = defaultdict(list)
    for name, _, size in rows:
        groups[name].append(size)
    order = [g for g in GROUP_ORDER if g in groups] + sorted(set(groups) - set(GROUP_ORDER))
    return [(g, len(groups[g]), sum(groups[g])) for g in order]


def is_replica(name: str) -> bool:
    return name.startswith("ray::ServeReplica:")


def snapshot(roots: list[psutil.Process]) -> list[tuple[str, int, int]]:
    """(title, pid, PSS bytes) of every live process in the trees of ``roots``."""
    rows = []
    for proc in process_trees(roots):
        rows.append((title(proc), proc.pid, pss(proc.pid)))
    return [r for r in rows if r[0] != "gone"]


# ---- the two services ------------------------------------------------------------------------

def health_round_trip(base: str, n: int = 30) -> float:
    """Median seconds of ``GET /health`` on one keep-alive connection: the HTTP path alone."""
    times = []
    with httpx.Client(timeout=10) as client:
        client.get(f"{base}/health")
        for _ in range(n):
            start = time.perf_counter()
            client.get(f"{base}/health").raise_for_status()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_loads(m: Measured, url: str, bodies: list[bytes], requests: int, warmup: int,
                  rss: MemorySampler | None) -> None:
    for _ in range(warmup):
        run_load(url, bodies, 2, len(bodies))
    for c in CONCURRENCY:
        res = m.loads[c] = run_level(url, bodies, c, max(c, requests), rss)
        log(f"{m.label} (round {m.round}) c={c}: {res.throughput:.2f} img/s, p50 "
            f"{ms(res.percentile(50))} ms, p90 {ms(res.percentile(90))} ms, errors "
            f"{errors(res.errors)}")


def run_fast(round_: int, args, bodies: list[bytes]) -> Measured:
    m = Measured("fast", round_)
    with Service("fast", "openvino", args.model_root) as service:
        m.start_s = service.start()
        log(f"fast (round {round_}): ready in {m.start_s:.1f} s")
        measure_loads(m, service.url, bodies, args.requests, args.warmup, service.rss)
        m.health_s = health_round_trip(service.url.rsplit("/ocr/", 1)[0])
        m.peak_pss = service.rss.peak()
        m.memory = snapshot([psutil.Process(p.proc.pid) for p in service.processes])
    return m


def ray_model_root(model_root: Path, into: Path) -> Path:
    """A folder of links to the bench's model folders: the replicas read the same models, and
    the lock file ``AppArgs.folder`` takes goes there rather than into the bench's model root."""
    into.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        if (model_root / name).is_dir() and not (into / name).exists():
            (into / name).symlink_to((model_root / name).resolve())
    return into


def serve_status() -> dict[str, dict[str, int]]:
    """Replicas per deployment of the app and state (RUNNING, STARTING, PENDING_...), from
    Serve's status."""
    from ray import serve

    app = serve.status().applications.get("ocr")
    if app is None:
        return {}
    return {name: {str(getattr(k, "value", k)): v for k, v in d.replica_states.items()}
            for name, d in app.deployments.items()}


class ReplicaWatch:
    """The most replicas in each state per deployment, from Serve's status every second (the
    autoscaler may add replicas during a load, and on a full node they cannot start)."""

    def __init__(self, interval: float = 1.0):
        self.seen: dict[str, dict[str, int]] = defaultdict(dict)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.note(serve_status())
            if self._stop.wait(interval):
                return

    def note(self, status: dict[str, dict[str, int]]) -> None:
        for name, states in status.items():
            for state, n in states.items():
                self.seen[name][state] = max(self.seen[name].get(state, 0), n)

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join()
        return {name: dict(states) for name, states in self.seen.items()}


def replica_text(states: dict[str, int]) -> str:
    """``1 RUNNING + 3 PENDING_ALLOCATION`` (most seen per state)."""
    return " + ".join(f"{n} {state}" for state, n in states.items()) or "none"


def run_ray(variant: Variant, round_: int, args, bodies: list[bytes], model_root: Path) -> Measured:
    """One variant on a local one-node cluster of its own, from ``ray.init`` to shutdown."""
    import ray
    from ray import serve

    from pdserving.ray_app import run_config

    m = Measured(variant.name, round_)
    me = psutil.Process()
    known: dict[int, float] = {}  # every Ray process seen: pid -> create time

    def remember() -> list[psutil.Process]:
        procs = process_trees(me.children())
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                known.setdefault(p.pid, p.create_time())
        return procs

    started = time.perf_counter()
    ray.init(address="local", num_cpus=CLUSTER_CPUS, include_dashboard=False,
             log_to_driver=args.ray_logs)
    m.start_s = time.perf_counter() - started
    rss = None
    try:
        remember()
        port = free_port(RAY_PORT)
        base = f"http://127.0.0.1:{port}"
        deploy = time.perf_counter()
        run_config(variant.config(port, model_root))
        wait_ready(base, 180, f"ray {variant.name}")
        m.ready_s = time.perf_counter() - deploy
        log(f"ray {variant.name} (round {round_}): cluster started in {m.start_s:.1f} s, deploy "
            f"to ready {m.ready_s:.1f} s")
        if (engines := ",".join(sorted(metric_engines(base)))) != "openvino":
            m.notes.append(f"models run on {engines or 'unknown engines'}")
        rss = MemorySampler([p.pid for p in me.children()])
        watch = ReplicaWatch()
        try:
            measure_loads(m, f"{base}/ocr/prediction", bodies, args.requests, args.warmup, rss)
        finally:
            m.replicas = watch.stop()
        m.peak_pss = rss.peak()
        remember()
        m.memory = snapshot(me.children())
        m.health_s = health_round_trip(base)
        if args.probe:
            probe(m, serve, variant, model_root)
        log(f"ray {variant.name} (round {round_}): replicas during the loads "
            + "; ".join(f"{k} {replica_text(v)}" for k, v in m.replicas.items()) + "; PSS "
            + ", ".join(f"{t} {mib(p)}" for t, _, p in m.memory if is_replica(t))
            + f", total {mib(sum(p for _, _, p in m.memory))} MiB")
    finally:
        if rss:
            rss.stop()
        remember()
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
        m.leftover = leftovers(known)
    return m


def leftovers(known: dict[int, float], grace: float = 15.0) -> list[str]:
    """The processes of ``known`` (pid -> create time) still alive ``grace`` seconds after the
    shutdown; they are killed (this run started them) and listed."""
    def alive() -> list[psutil.Process]:
        procs = []
        for pid, created in known.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    procs.append(p)
        return procs

    deadline = time.monotonic() + grace
    while (procs := alive()) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [f"{title(p)} (pid {p.pid})" for p in procs]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    return left


def probe(m: Measured, serve, variant: Variant, model_root: Path) -> None:
    """Where the overhead goes: the samples' det steps and rec steps through the det and rec
    replicas (``ServeCall`` as the pipeline's steps: the 8-bit image and the crops across, boxes
    and texts back) against the same steps on the same models in this process (same engine and
    math threads), and det's ``where`` through the handle (the call overhead alone)."""
    import cv2

    from pdserving.engine import EngineOptions
    from pdserving.ops.crop import rotate_crop
    from pdserving.pipeline import OcrOptions, OcrPipeline
    from pdserving.ray_app import ServeCall
    from pdserving.services import local_handler

    # The variant's math threads per replica (null: its num_cpus, 1 in every variant here).
    threads = variant.config(0, model_root)["applications"][0]["args"].get("threads") or 1
    options = OcrOptions()
    handler = local_handler("ocr", model_root,
                            EngineOptions(engine="openvino", instances=1, threads=threads), options)
    try:
        local = handler.pipeline
        images = [cv2.imdecode(np.frombuffer(s.data, np.uint8), cv2.IMREAD_COLOR)
                  for s in data.load_samples()]
        crops = [[rotate_crop(img, box) for box in local.detect(img)] for img in images]
        remote = OcrPipeline(*(ServeCall(serve.get_deployment_handle(name, "ocr"), name, 60)
                               for name in ("det", "rec")), options)
        for name, steps, inputs in (("det", (remote.detect, local.detect), images),
                                    ("rec", (remote.recognize, local.recognize), crops)):
            there, here = (timed(lambda: [step(x) for x in inputs]) / len(inputs)
                           for step in steps)
            m.probe[name] = (there, here)
            log(f"ray {variant.name}: {name} step per sample through its replica {ms(there)} ms, "
                f"in-process {ms(here)} ms ({threads} thread(s))")
    finally:
        handler.close()
    det = serve.get_deployment_handle("det", app_name="ocr")
    m.noop_s = timed(lambda: det.where.remote().result(timeout_s=60))


def timed(call, n: int = PROBE_CALLS, warm: int = 3) -> float:
    for _ in range(warm):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- the report ------------------------------------------------------------------------------

def ratios(fast: Measured, ray: Measured) -> tuple[float, float]:
    """(Ray c=1 p50 / fast c=1 p50, Ray c=4 images/s / fast c=4 images/s)."""
    return (ray.loads[1].percentile(50) / fast.loads[1].percentile(50),
            ray.loads[4].throughput / max(fast.loads[4].throughput, 1e-9))


def by_round(results: list[Measured]) -> dict[int, dict[str, Measured]]:
    rounds: dict[int, dict[str, Measured]] = defaultdict(dict)
    for m in results:
        rounds[m.round][m.name] = m
    return dict(rounds)


def variant_targets(results: list[Measured], name: str):
    """Per round in which both ran: the two targets of issue 9 for variant ``name``."""
    rows = []
    for r, ms_ in by_round(results).items():
        if "fast" in ms_ and name in ms_:
            p50, tput = ratios(ms_["fast"], ms_[name])
            rows.append((r, [target(f"round {r}: c=1 p50 ray / fast", p50, P50_LIMIT),
                             target(f"round {r}: c=4 images/s ray / fast", tput,
                                    THROUGHPUT_LIMIT)]))
    return rows


def verdict(results: list[Measured], name: str) -> str:
    rows = variant_targets(results, name)
    if not rows:
        return "not compared"
    passed = sum(all(ok for *_, ok in ts) for _, ts in rows)
    return ("**meets both targets**" if passed == len(rows) else
            f"**misses** (both met in {passed} of {len(rows)} round(s))")


def load_rows(results: list[Measured]) -> list[list]:
    rounds = by_round(results)
    rows = []
    for m in results:
        fast = rounds[m.round].get("fast")
        for c, res in m.loads.items():
            ratio = ""
            if fast is not None and m.name != "fast" and c in (1, 4):
                p50, tput = ratios(fast, m)
                ratio = (f"p50 {p50:.2f} ({'pass' if p50 <= 1.15 else 'FAIL'} <= 1.15)" if c == 1
                         else f"images/s {tput:.2f} ({'pass' if tput >= 0.85 else 'FAIL'} "
                              ">= 0.85)")
            rows.append([m.round, m.label, c, len(res.latencies) + res.error_count,
                         f"{res.throughput:.2f}", ms(res.percentile(50)), ms(res.percentile(90)),
                         errors(res.errors), mib(res.peak_rss), ratio])
    return rows


def memory_rows(m: Measured) -> list[list]:
    rows = [[m.round, m.label, g, n, mib(size)] for g, n, size in group_memory(m.memory)]
    replicas = sum(p for t, _, p in m.memory if is_replica(t))
    total = sum(p for _, _, p in m.memory)
    if m.name != "fast":
        rows.append([m.round, m.label, "replicas (det, rec, ingress)", "", mib(replicas)])
    rows.append([m.round, m.label, "**total**", len(m.memory), f"**{mib(total)}**"])
    return rows


def render(args, info: dict, images: list[data.BenchImage], results: list[Measured],
           elapsed: float, notes: str) -> str:
    sides = [max(im.height, im.width) for im in images]
    fast_opts = service_settings("openvino")
    out = heading(
        "The OCR service on Ray Serve against the fast service", args.quick,
        f"Written by `python -m bench.ray_service` on {info['date']} in {elapsed:.0f} s "
        f"({args.rounds} round(s); variants {', '.join(args.variants)}).", info, [
        ["fast service", f"`ocr_local_server.py cpu`, openvino: {fast_opts.instances} stream(s), "
                         f"{fast_opts.threads} math thread(s)"],
        ["Ray cluster", f"one local node, `ray.init(address=\"local\", num_cpus={CLUSTER_CPUS}, "
                        "include_dashboard=False)`, a new one per variant and round"],
        ["image set", f"{len(images)} images, long side {min(sides)}-{max(sides)} px"],
        ["requests per level", f"{args.requests}, after {args.warmup} untimed pass(es) at c=2 "
                               "over the image set"],
    ])
    out += ["## Variants", ""]
    out += table(["variant", "Serve config"],
                 [[name, VARIANTS[name].what] for name in args.variants])

    out += ["## Targets of issue 9", "",
            "Ratios Ray / fast, each within its round (the fast service measured in the same "
            "round). c=1 p50 <= 1.15x fast; c=4 images/s >= 0.85x fast.", ""]
    rows = []
    for name in args.variants:
        for _, ts in variant_targets(results, name):
            rows += target_rows(ts, name)
    out += table(["variant", "target", "measured", "limit", "result"], rows)
    out += ["; ".join(f"{name}: {verdict(results, name)}" for name in args.variants) + ".", ""]

    out += ["## Loads", "",
            "Each level sends the image set in turn from that many client threads (keep-alive "
            "connections, bodies prepared beforehand). Latency per request (one image). Peak "
            "memory: PSS of all the service's processes summed (Ray: every process of the "
            "cluster, the driver, i.e. this benchmark, excepted), sampled every 0.2 s during a "
            "second, untimed run at the same level (reading PSS costs the service CPU: 55 ms per "
            "sample of the Ray service's processes). In run order.", ""]
    out += table(["round", "service", "c", "requests", "images/s", "p50 ms", "p90 ms", "errors",
                  "peak PSS MiB", "ratio to fast (same round)"], load_rows(results))

    out += ["## Start", "",
            "Fast: launch to `GET /ready` 200. Ray: cluster start = `ray.init` until connected "
            "(GCS, raylet and Ray's daemons started); deploy to ready = `run_config` of the "
            "Serve config (controller, proxy, replicas, models loaded and warmed) until "
            "`GET /ready` 200.", ""]
    rows = []
    for m in results:
        if m.name == "fast":
            rows.append([m.round, m.label, "", "", f"{m.start_s:.1f}"])
        else:
            rows.append([m.round, m.label, f"{m.start_s:.1f}", f"{m.ready_s:.1f}",
                         f"{m.start_s + m.ready_s:.1f}"])
    out += table(["round", "service", "cluster start s", "deploy to ready s", "total s"], rows)

    out += ["## Memory", "",
            "PSS per process after the loads, grouped by process title (Ray workers set "
            "`ray::<actor>`; Ray's Python daemons by script).", ""]
    rows = []
    for m in results:
        if m.memory:
            rows += memory_rows(m)
    out += table(["round", "service", "process", "processes", "PSS MiB"], rows)
    rows = [[m.round, m.label, name, replica_text(states)]
            for m in results for name, states in m.replicas.items()]
    if rows:
        out += ["Replicas during the loads: the most seen in each state (Serve status, read "
                "every second).", ""]
        out += table(["round", "service", "deployment", "replicas"], rows)

    out += ["## Where the time goes", "",
            "Median of `GET /health` (the HTTP path alone; Ray: proxy actor -> ingress replica) "
            f"on one connection; and, per Ray variant, the median of {PROBE_CALLS} passes over the "
            "samples of their det steps and rec steps through the det and rec replicas from "
            "this process (the ingress's path: the 8-bit image or the crops across, boxes or "
            "texts back), per sample, against the same steps on the same models in this process "
            "(same engine and math threads), and det's `where` through the handle (the call "
            "overhead alone).", ""]
    rows = []
    for m in results:
        row = [m.round, m.label, ms(m.health_s)]
        for name in ("det", "rec"):
            remote, local = m.probe.get(name, (None, None))
            row += ["", ""] if remote is None else [ms(remote), ms(local)]
        row.append(ms(m.noop_s) if m.noop_s else "")
        rows.append(row)
    out += table(["round", "service", "/health ms", "det step on its replica ms",
                  "det step in-process ms", "rec step on its replica ms",
                  "rec step in-process ms", "handle call, no array ms"], rows)

    odd = [f"round {m.round} {m.label}: {note}" for m in results for note in m.notes]
    odd += [f"round {m.round} {m.label}: left behind and killed: {', '.join(m.leftover)}"
            for m in results if m.leftover]
    out += ["## Checks", ""]
    out += [f"- {line}" for line in odd] or [
        "- Every Ray process started was gone after `serve.shutdown()` and `ray.shutdown()`; "
        "every model ran on OpenVINO."]
    out.append("")
    return "\n".join(out).rstrip() + "\n" + (f"\n{notes}" if notes else "")


# ---- main ------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ray_service",
                                description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help=f"comma separated, of: {', '.join(VARIANTS)} (default: "
                        f"{DEFAULT_VARIANTS})")
    p.add_argument("--rounds", type=int, default=2,
                   help="fast + every variant per round; even rounds in reverse order")
    p.add_argument("--requests", type=int, default=0,
                   help="requests per concurrency level (default: the image set once, as "
                        "bench.run)")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes before the loads")
    p.add_argument("--no-probe", dest="probe", action="store_false",
                   help="skip the handle round-trip probe")
    p.add_argument("--ray-logs", action="store_true", help="show the Ray workers' logs")
    p.add_argument("--quick", action="store_true",
                   help="tiny counts (the smoke test): 1 sample + 1 page, 3 requests per level")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS_RAY.md")
    p.add_argument("--model_root", type=Path, default=ROOT,
                   help="folder with ocr_det_model/ and ocr_rec_model/ (make models)")
    p.add_argument("--data", type=Path, default=HERE / "data", help="where generated images go")
    args = p.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    if unknown := set(args.variants) - set(VARIANTS):
        p.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def run_order(variants: list[str], rounds: int) -> list[tuple[int, str]]:
    """(round, service) in run order: fast then the variants, reversed in even rounds."""
    order = []
    for r in range(1, rounds + 1):
        names = ["fast", *variants]
        order += [(r, n) for n in (names if r % 2 else names[::-1])]
    return order


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    started = time.monotonic()
    samples = data.load_samples(limit=1 if args.quick else None)
    generated = data.generate(args.data, samples,
                              data.QUICK_PAGE_SIZES if args.quick else data.PAGE_SIZES)
    images = samples + generated
    bodies = [data.request_body(im) for im in images]
    if args.quick:
        args.requests, args.warmup = args.requests or 3, 0
    args.requests = args.requests or len(bodies)
    code = code_version()
    log(f"{len(images)} images, {args.requests} requests per level, variants "
        f"{', '.join(args.variants)}, {args.rounds} round(s)")
    import ray  # noqa: F401  (imported before any cluster start is timed)

    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        model_root = ray_model_root(args.model_root, Path(tmp) / "models")
        for r, name in run_order(args.variants, args.rounds):
            if name == "fast":
                results.append(run_fast(r, args, bodies))
            else:
                results.append(run_ray(VARIANTS[name], r, args, bodies, model_root))
            if results[-1].leftover:
                log(f"warning: left behind and killed: {', '.join(results[-1].leftover)}")

    if (now := code_version()) != code:
        code += f", then {now} by the end of the run: figures from mixed code"
    report = render(args, {**machine(), "code": code, "Ray": ray_version()}, images, results,
                    time.monotonic() - started, kept_notes(args.out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    log(f"wrote {args.out}")
    for name in args.variants:
        for _, ts in variant_targets(results, name):
            for what, v, limit, ok in ts:
                log(f"  {'pass' if ok else 'FAIL'}  {name} {what}: {v:.3g} ({limit})")
    return 0


def ray_version() -> str:
    return version("ray")


if __name__ == "__main__":
    sys.exit(main())
