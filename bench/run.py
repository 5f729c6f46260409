"""``python -m bench.run`` (``make bench``): measure the OCR services against the engine floor.

Phases, in order: the engine floor in-process (section 1), then per mode (fast, standard) one
service started from cold (section 4), swept over concurrency 1, 2, 4, 8 (section 2), then left
running for the memory run (section 3). The report, with the issue's targets as ratios, goes to
``bench/RESULTS.md``; a ``## Notes`` section already in that file is kept.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import data, floor
from bench.load import LoadResult, MiB, Service, first_and_steady, run_load

HERE = Path(__file__).resolve().parent
CONCURRENCY = (1, 2, 4, 8)
MEMORY_CONCURRENCY = 4
MEMORY_MAX_LINES = 2  # memory-run images: samples with at most this many labelled lines
NOTES_HEADING = "## Notes"
STARTED = time.monotonic()


@dataclass(frozen=True)
class Plan:
    """How much of everything to run: the full benchmark, or tiny counts for the smoke test."""

    sample_limit: int | None = None
    page_sizes: tuple = tuple(data.PAGE_SIZES)
    floor_runs: int = 3         # passes over the recorded batches (fastest per image counts)
    steady_repeats: int = 5     # same-image requests after the first one
    warmup_passes: int = 1      # untimed passes over the image set before the sweep
    sweep_passes: int = 1       # passes over the image set per level (at least c requests)
    memory_requests: int = 2000
    memory_mark: int = 100      # memory is read after this many requests and at the end
    size_variants: int = 50


FULL = Plan()
QUICK = Plan(sample_limit=1, page_sizes=tuple(data.QUICK_PAGE_SIZES), floor_runs=2,
             steady_repeats=1, warmup_passes=0, sweep_passes=0, memory_requests=8,
             memory_mark=4, size_variants=4)


@dataclass
class ModeResult:
    mode: str
    ready_s: float = 0.0
    det_ready_s: float = 0.0
    first: float = 0.0
    steady: float = 0.0
    sweep: dict[int, LoadResult] = field(default_factory=dict)
    memory: tuple[int, int, int] | None = None  # memory after the mark, at the end, peak
    memory_s: float = 0.0  # duration of the memory run
    memory_errors: Counter = field(default_factory=Counter)
    memory_note: str = ""
    peak_rss: int = 0  # over the service's whole run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny counts (the smoke test)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--modes", default="fast,standard", help="comma separated: fast,standard")
    p.add_argument("--model_root", type=Path, default=HERE.parent,
                   help="folder with ocr_det_model/ and ocr_rec_model/ (make models)")
    p.add_argument("--data", type=Path, default=HERE / "data", help="where generated images go")
    p.add_argument("--floor-threads", default="",
                   help="more math-thread settings for the floor, comma separated (1 and "
                        "the services' setting are always measured)")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--budget", type=float, default=540.0,
                   help="seconds; the standard-mode memory run is skipped if it would not fit")
    args = p.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - {"fast", "standard"}
    if unknown:
        p.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    return args


def service_engine() -> tuple[int, int]:
    """(model worker processes, math threads per worker) the OCR scripts use by default."""
    from pdserving import cli

    defaults = cli._parser("", standard=False).parse_args(["cpu"])
    return defaults.instances, defaults.threads


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:5.0f} s] {msg}", flush=True)


def run_mode(mode: str, args, plan: Plan, bodies: list[bytes], variants: list[bytes],
             fast: ModeResult | None) -> ModeResult:
    """Sections 2-4 for one mode, on one service started from cold."""
    r = ModeResult(mode)
    with Service(mode, args.model_root) as service:
        r.ready_s, r.det_ready_s = service.start(), service.det_ready_s
        r.first, r.steady = first_and_steady(service.url, bodies[0], plan.steady_repeats)
        log(f"{mode}: ready in {r.ready_s:.1f} s, first request {r.first * 1e3:.0f} ms, "
            f"steady {r.steady * 1e3:.0f} ms")
        for _ in range(plan.warmup_passes):
            run_load(service.url, bodies, 2, len(bodies))
        for c in CONCURRENCY:
            total = max(c, plan.sweep_passes * len(bodies))
            res = r.sweep[c] = run_load(service.url, bodies, c, total, service.rss)
            log(f"{mode} c={c}: {res.throughput:.2f} img/s, p50 {res.percentile(50) * 1e3:.0f} "
                f"ms, p99 {res.percentile(99) * 1e3:.0f} ms, errors {errors(res.errors)}")
        if args.skip_memory:
            r.memory_note = "skipped (--skip-memory)"
        elif (reason := memory_does_not_fit(r, fast, args.budget)):
            r.memory_note = reason
        else:
            mark_start = time.monotonic()
            first = run_load(service.url, variants, MEMORY_CONCURRENCY, plan.memory_mark)
            after_mark = service.rss.current()
            rest = run_load(service.url, variants, MEMORY_CONCURRENCY,
                            plan.memory_requests - plan.memory_mark)
            r.memory = (after_mark, service.rss.current(), service.rss.peak(mark_start))
            r.memory_s = time.monotonic() - mark_start
            r.memory_errors = first.errors + rest.errors
            log(f"{mode} memory: {after_mark / MiB:.0f} -> {r.memory[1] / MiB:.0f} MiB "
                f"in {r.memory_s:.0f} s")
        r.peak_rss = service.rss.peak()
    return r


def memory_does_not_fit(r: ModeResult, fast: ModeResult | None, budget: float) -> str:
    """Why the memory run is skipped for this mode, or "" to run it. Estimated from the fast
    run's memory phase, scaled by the two modes' c=4 throughput."""
    if fast is None or fast.memory is None:
        return ""
    scale = fast.sweep[4].throughput / max(r.sweep[4].throughput, 1e-9)
    estimate = fast.memory_s * scale
    elapsed = time.monotonic() - STARTED
    if elapsed + estimate > budget:
        return (f"skipped: about {estimate:.0f} s more would pass the {budget:.0f} s budget "
                f"({elapsed:.0f} s used)")
    return ""


# ---- the report ------------------------------------------------------------------------------

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


def mean(xs) -> float:
    xs = list(xs)
    return statistics.fmean(xs) if xs else float("nan")


def machine() -> dict[str, str]:
    from importlib import metadata

    cpu = platform.processor() or "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    paddle = "not installed"
    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            paddle = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return {"CPU": cpu, "cores": str(len(os.sched_getaffinity(0))), "memory": f"{memory:.1f} GiB",
            "Python": platform.python_version(), "Paddle": paddle,
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}


def text_check(profiles: list[floor.ImageProfile], labels: dict[str, list[str]]) -> str:
    """How many labelled sample lines the pipeline read exactly: a wrong pipeline is not fast."""
    found = total = 0
    for p in profiles:
        expected = labels.get(p.name, [])
        found += sum(line in p.lines for line in expected)
        total += len(expected)
    return f"{found} of {total} labelled sample lines read exactly" if total else ""


def floor_section(profiles: list[floor.ImageProfile], floors: list[floor.Floor],
                  service_threads: int, runs: int, check: str) -> list[str]:
    out = ["## 1. Engine floor (in-process, no HTTP)", "",
           "Model time alone per image, for exactly the batches the pipeline fed the models "
           f"(recorded in one pipeline pass, then the whole sequence re-run {runs} times alone, in "
           "the pipeline's order, on one in-process predictor per model; each image keeps its "
           "fastest pass). Milliseconds per image.", ""]
    rows = []
    for f in floors:
        label = f"{f.threads}" + (" (services' setting)" if f.threads == service_threads else "")
        rows.append([label, ms(mean(f.det)), ms(mean(f.rec)), ms(mean(f.per_image)),
                     ms(statistics.median(f.per_image)), ms(max(f.per_image))])
    rows.append(["1, as called in the pipeline pass (each shape new)",
                 ms(mean(p.det_time for p in profiles)), ms(mean(p.rec_time for p in profiles)),
                 ms(mean(p.det_time + p.rec_time for p in profiles)),
                 ms(statistics.median(p.det_time + p.rec_time for p in profiles)),
                 ms(max(p.det_time + p.rec_time for p in profiles))])
    out += table(["math threads", "det mean", "rec mean", "floor mean", "floor p50",
                  "floor max"], rows)

    # Pre/post steps as timed in the pipeline pass; model rows from the floor at 1 thread, so
    # the shares describe a warm service rather than the first sight of each shape.
    one = next(f for f in floors if f.threads == 1)
    steps = {s: mean(p.steps.get(s, 0.0) for p in profiles)
             for s in (floor.DECODE_STEP, *floor.STEPS)}
    glue = mean(p.total - p.det_time - p.rec_time - sum(p.steps.values()) for p in profiles)
    prepost = sum(steps.values()) + glue
    rows = list(steps.items())
    rows.insert(2, ("det model (floor, 1 thread)", mean(one.det)))
    rows.insert(6, ("rec model (floor, 1 thread)", mean(one.rec)))
    rows.append(("other (pipeline glue, metrics)", glue))
    total = sum(v for _, v in rows)
    out += ["Where one image's time goes in-process, mean milliseconds per image (pre/post "
            "steps timed in the pipeline pass, models at their floor):", ""]
    out += table(["step", "ms / image", "share"],
                 [[name, ms(v), f"{v / total:.1%}"] for name, v in rows]
                 + [["**total**", f"**{ms(total)}**", "100%"]])
    out += [f"Pre/post-processing: **{prepost / total:.1%}** of the time per image "
            f"({ms(prepost)} of {ms(total)} ms)." + (f" Check: {check}." if check else ""), ""]
    return out


def services_section(results: dict[str, ModeResult], plan: Plan,
                     ideal: float | None) -> list[str]:
    warm = f", after {plan.warmup_passes} untimed pass(es)" if plan.warmup_passes else ""
    out = ["## 2. Services over HTTP", "",
           "Each concurrency level sends the image set in turn from that many client threads "
           f"(keep-alive connections, bodies prepared beforehand){warm}. "
           "Latency is per request (one image). Peak memory: PSS of all processes of the "
           "service summed (shared library pages counted once), sampled every 0.2 s during the "
           "level.", ""]
    rows = []
    for r in results.values():
        for c, res in r.sweep.items():
            rows.append([r.mode, c, len(res.latencies) + res.error_count,
                         f"{res.throughput:.2f}", ms(res.percentile(50)), ms(res.percentile(90)),
                         ms(res.percentile(99)), errors(res.errors), mib(res.peak_rss)])
    out += table(["mode", "concurrency", "requests", "images/s", "p50 ms", "p90 ms", "p99 ms",
                  "errors", "peak memory MiB"], rows)
    if ideal:
        out += [f"Ideal throughput on this machine: cores / floor mean at 1 math thread = "
                f"**{ideal:.2f} images/s**.", ""]
    return out


def memory_section(results: dict[str, ModeResult], plan: Plan,
                   variants: list[data.BenchImage]) -> list[str]:
    sides = [max(v.height, v.width) for v in variants]
    sources = sorted({v.source for v in variants})
    out = ["## 3. Memory over time", "",
           f"{plan.memory_requests} requests at concurrency {MEMORY_CONCURRENCY} on the service "
           f"of section 2, cycling through {len(variants)} variants of distinct sizes (long side "
           f"{min(sides)}-{max(sides)} px: many det input shapes) of {', '.join(sources)}. "
           "Memory: PSS summed over the service's processes.", ""]
    rows = []
    for r in results.values():
        if r.memory is None:
            rows.append([r.mode, r.memory_note or "not run", "", "", "", "", ""])
            continue
        after, end, peak = r.memory
        rows.append([r.mode, f"{r.memory_s:.0f} s", errors(r.memory_errors), mib(after),
                     mib(end), f"{end / after:.3f}", mib(peak)])
    out += table(["mode", "duration", "errors", f"memory after {plan.memory_mark} MiB",
                  "memory at end MiB", "end / after", "peak MiB"], rows)
    return out


def cold_section(results: dict[str, ModeResult]) -> list[str]:
    out = ["## 4. Cold start", "",
           "Seconds from launching the service (standard: the det model server, then the web "
           "service) to `GET /ready` = 200; then the first request and the median of the same "
           "request repeated (the first sample image).", ""]
    rows = []
    for r in results.values():
        ready = f"{r.ready_s:.1f}" + (f" (det server {r.det_ready_s:.1f})" if r.det_ready_s
                                      else "")
        rows.append([r.mode, ready, ms(r.first), ms(r.steady), f"{r.first / r.steady:.2f}"])
    out += table(["mode", "launch to ready s", "first request ms", "steady p50 ms",
                  "first / steady"], rows)
    return out


def targets(results: dict[str, ModeResult], floors: list[floor.Floor],
            service_threads: int) -> list[tuple[str, float, str, bool]]:
    """The issue's targets: (what, measured, limit, met). Missing measurements are left out."""
    rows = []
    fast, standard = results.get("fast"), results.get("standard")
    by_threads = {f.threads: f for f in floors}
    at_service = by_threads.get(service_threads)
    if fast and at_service:
        v = fast.sweep[1].percentile(50) / statistics.median(at_service.per_image)
        rows.append(("fast c=1 p50 / engine floor p50 (same threads)", v, "<= 1.15", v <= 1.15))
    if fast and standard:
        v = standard.sweep[1].percentile(50) / fast.sweep[1].percentile(50)
        rows.append(("standard c=1 p50 / fast c=1 p50", v, "<= 1.10", v <= 1.10))
    ideal = ideal_throughput(floors)
    for r in results.values():
        c4 = r.sweep[4]
        if ideal:
            v = c4.throughput / ideal
            rows.append((f"{r.mode} c=4 throughput / ideal", v, ">= 0.85", v >= 0.85))
        rows.append((f"{r.mode} c=4 errors", c4.error_count, "= 0", c4.error_count == 0))
        v = c4.percentile(99) / c4.percentile(50)
        rows.append((f"{r.mode} c=4 p99 / p50", v, "<= 3", v <= 3))
        if r.memory:
            v = r.memory[1] / r.memory[0]
            rows.append((f"{r.mode} memory end / after first requests", v, "<= 1.2", v <= 1.2))
    if fast:
        v = fast.peak_rss / (1 << 30)
        rows.append(("fast peak memory, PSS summed (GiB)", v, "< 1.5", v < 1.5))
    for r in results.values():
        rows.append((f"{r.mode} cold start (s)", r.ready_s, "< 15", r.ready_s < 15))
        v = r.first / r.steady
        rows.append((f"{r.mode} first request / steady p50", v, "<= 1.5", v <= 1.5))
    return rows


def ideal_throughput(floors: list[floor.Floor]) -> float | None:
    """Images/s if every core ran the models at 1 thread with nothing else to do."""
    one = next((f for f in floors if f.threads == 1), None)
    return len(os.sched_getaffinity(0)) / mean(one.per_image) if one else None


def render(args, plan: Plan, info: dict, images: tuple, profiles, floors, results, check,
           engine: tuple[int, int], elapsed: float, notes: str) -> str:
    instances, threads = engine
    samples, generated, variants = images
    sides = [max(im.height, im.width) for im in samples + generated]
    out = ["# Benchmark results", ""]
    if args.quick:
        out += ["**Quick run (smoke test): tiny counts, the figures mean nothing.**", ""]
    out += [f"Written by `python -m bench.run` (`make bench`) on {info['date']} in "
            f"{elapsed:.0f} s.", ""]
    out += table(["machine", ""], [[k, v] for k, v in info.items() if k != "date"] + [
        ["services' engine", f"{instances} model worker processes, {threads} math thread(s) each "
                             "(the scripts' defaults)"],
        ["image set", f"{len(samples)} samples + {len(generated)} generated pages, long side "
                      f"{min(sides)}-{max(sides)} px, PNG and JPEG"],
    ])
    if floors:
        out += floor_section(profiles, floors, threads, plan.floor_runs, check)
    if results:
        out += services_section(results, plan, ideal_throughput(floors))
        out += memory_section(results, plan, variants)
        out += cold_section(results)
        rows = [[what, f"{v:.3g}" if isinstance(v, float) else v, limit,
                 "pass" if ok else "**FAIL**"]
                for what, v, limit, ok in targets(results, floors, threads)]
        out += ["## Targets (issue 4)", ""]
        out += table(["target", "measured", "limit", "result"], rows)
    return "\n".join(out).rstrip() + "\n" + (f"\n{notes}" if notes else "")


def kept_notes(path: Path) -> str:
    """The hand-written ``## Notes`` section of the previous report, if any."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    at = text.find("\n" + NOTES_HEADING)
    return text[at + 1:] if at >= 0 else ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM as Ctrl-C: unwind, so every started server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = QUICK if args.quick else FULL
    samples = data.load_samples(limit=plan.sample_limit)
    generated = data.generate(args.data, samples, plan.page_sizes)
    # The memory run's 2000 requests use the samples with few lines (signs, tags): light
    # requests, so that it fits the time budget, in many sizes.
    labels = data.load_labels()
    light = [s for s in samples if 0 < len(labels.get(s.name, [])) <= MEMORY_MAX_LINES]
    variants = data.size_variants(light or samples or generated, plan.size_variants)
    images = samples + generated
    bodies = [data.request_body(im) for im in images]
    variant_bodies = [data.request_body(im) for im in variants]
    engine = service_engine()
    log(f"{len(samples)} samples + {len(generated)} generated images; services: "
        f"{engine[0]} predictors x {engine[1]} thread(s)")

    profiles, floors = [], []
    if not args.skip_floor:
        profiles = floor.profile_pipeline([im.name for im in images], bodies, args.model_root,
                                          threads=1)
        settings = {1, engine[1], *(int(t) for t in args.floor_threads.split(",") if t)}
        for threads in sorted(settings):
            floors.append(floor.model_floor(profiles, args.model_root, threads,
                                            plan.floor_runs))
            log(f"engine floor at {threads} thread(s): "
                f"{ms(mean(floors[-1].per_image))} ms per image (mean)")
        for p in profiles:  # the recorded batches are large; they are done with
            p.det_batches, p.rec_batches = [], []

    results: dict[str, ModeResult] = {}
    for mode in args.modes:
        results[mode] = run_mode(mode, args, plan, bodies, variant_bodies, results.get("fast"))

    report = render(args, plan, machine(), (samples, generated, variants), profiles, floors,
                    results, text_check(profiles, labels), engine,
                    time.monotonic() - STARTED, kept_notes(args.out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    log(f"wrote {args.out}")
    for what, v, limit, ok in targets(results, floors, engine[1]):
        log(f"  {'pass' if ok else 'FAIL'}  {what}: {v:.3g} ({limit})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
