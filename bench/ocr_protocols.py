"""What PaddleX's protocol (``POST /ocr``, docs/design.md §2.7) costs next to the kit's own, and
what a PDF's pages cost next to the same pages sent as images.

``python -m bench.ocr_protocols [--quick]`` writes ``bench/RESULTS_PROTOCOLS.md`` (``make bench``
runs it after ``bench.run``). One fast service, as ``python ocr_local_server.py cpu`` starts it
(the default family on OpenVINO):

- ``/ocr/prediction`` and ``/ocr`` (``visualize`` off: pictures are work and bandwidth the
  other protocol does not spend) on the samples, in alternating rounds at each concurrency, so
  that drift hits both alike; target: ``/ocr`` within 1.05x in p50 and images/s.
- a PDF of 20 pages (the samples, at 144 dpi so that each page renders at its image's size)
  sent whole, against its pages sent one image per request, from one client: pages/s.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench import data, families
from bench.load import REQUEST_TIMEOUT, LoadResult, Service, run_load
from bench.report import code_version, kept_notes, log, machine

OUT = Path(__file__).resolve().parent / "RESULTS_PROTOCOLS.md"
LIMIT = 1.05  # /ocr against /ocr/prediction, p50 and images/s
PDF_PAGES = 20


def ocr_body(file: bytes, **fields) -> bytes:
    return json.dumps({"file": base64.b64encode(file).decode(), "visualize": False,
                       **fields}).encode()


def pdf_of(images: list[data.BenchImage]) -> bytes:
    pages = [Image.open(io.BytesIO(im.data)).convert("RGB") for im in images]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=144)
    return out.getvalue()


def merged(runs: list[LoadResult]) -> tuple[float, float]:
    """p50 (s) and images/s over several runs of one protocol."""
    latencies = [t for r in runs for t in r.latencies]
    errors = sum(r.error_count for r in runs)
    if errors:
        raise RuntimeError(f"{errors} requests failed")
    return float(np.percentile(latencies, 50)), len(latencies) / sum(r.wall for r in runs)


def protocols(base: str, samples: list[data.BenchImage], levels: tuple[int, ...],
              rounds: int) -> dict[int, dict[str, tuple[float, float]]]:
    urls = {"/ocr/prediction": (base + "/ocr/prediction",
                                [data.request_body(im) for im in samples]),
            "/ocr": (base + "/ocr", [ocr_body(im.data, fileType=1) for im in samples])}
    for url, bodies in urls.values():  # warm-up: every image size through both doors
        run_load(url, bodies, 2, len(bodies))
    results = {}
    for c in levels:
        runs: dict[str, list[LoadResult]] = {name: [] for name in urls}
        for _ in range(rounds):
            for name, (url, bodies) in urls.items():
                runs[name].append(run_load(url, bodies, c, max(c, len(bodies))))
        results[c] = {name: merged(r) for name, r in runs.items()}
        own, paddlex = results[c]["/ocr/prediction"], results[c]["/ocr"]
        log(f"c={c}: /ocr/prediction p50 {own[0] * 1e3:.0f} ms {own[1]:.2f} img/s; /ocr p50 "
            f"{paddlex[0] * 1e3:.0f} ms {paddlex[1]:.2f} img/s")
    return results


def pdf_pages(base: str, pages: list[data.BenchImage], repeats: int) -> dict[str, float]:
    """Pages per second: the PDF whole, then its pages as images, in turn, ``repeats`` times."""
    pdf = ocr_body(pdf_of(pages), fileType=0)
    images = [ocr_body(im.data, fileType=1) for im in pages]
    times: dict[str, list[float]] = {"pdf": [], "images": []}
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        def post(body: bytes) -> None:
            client.post(base + "/ocr", content=body).raise_for_status()

        post(pdf)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            post(pdf)
            times["pdf"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for body in images:
                post(body)
            times["images"].append(time.perf_counter() - started)
    rates = {k: len(pages) / statistics.median(v) for k, v in times.items()}
    log(f"{len(pages)} pages: as a PDF {rates['pdf']:.2f} pages/s, as images "
        f"{rates['images']:.2f} pages/s")
    return rates


def render(info: dict, family: str, results: dict, rates: dict, pages: int, rounds: int) -> str:
    lines = ["# /ocr (PaddleX's protocol) against /ocr/prediction, and PDF pages", "",
             f"`python -m bench.ocr_protocols`, {info['date']}; {info['CPU']}, "
             f"{info['cores']} cores; code {info['code']}. One fast service "
             f"(`ocr_local_server.py cpu`: {family} on OpenVINO); the samples "
             f"through each door in {rounds} alternating rounds per concurrency; `/ocr` with "
             "`visualize` off.", "",
             "| c | /ocr/prediction p50 | /ocr p50 | ratio | /ocr/prediction img/s | "
             "/ocr img/s | ratio | within 1.05x |", "|---|---|---|---|---|---|---|---|"]
    for c, r in results.items():
        (p_own, t_own), (p_px, t_px) = r["/ocr/prediction"], r["/ocr"]
        ok = p_px / p_own <= LIMIT and t_own / t_px <= LIMIT
        lines.append(f"| {c} | {p_own * 1e3:.0f} ms | {p_px * 1e3:.0f} ms | "
                     f"{p_px / p_own:.3f} | {t_own:.2f} | {t_px:.2f} | {t_px / t_own:.3f} | "
                     f"{'yes' if ok else 'NO'} |")
    lines += ["", f"A PDF of {pages} pages (the samples, 144 dpi) in one `/ocr` request: "
              f"{rates['pdf']:.2f} pages/s; the same pages as {pages} image requests, one "
              f"client: {rates['images']:.2f} pages/s ({rates['pdf'] / rates['images']:.2f}x). "
              "A PDF's pages run one after another on one worker, the next page rendering "
              "while the current one is read.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="c=1 only, one round, 4 pages")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--model_root", type=Path, default=None,
                   help="the service's model folders (default: the CPU default family's, "
                        "written under --data)")
    args = p.parse_args(argv)
    samples = data.load_samples()
    levels, rounds, repeats = ((1,), 1, 1) if args.quick else (families.LEVELS, 3, 3)
    count = 4 if args.quick else PDF_PAGES
    pages = (samples * (count // len(samples) + 1))[:count]
    root = args.model_root or families.write_root(families.SMALL, args.data)
    family = families.root_family(root) or str(root)
    with Service("fast", families.ENGINE, root) as service:
        service.start()
        base = service.url.rsplit("/ocr/prediction", 1)[0]
        results = protocols(base, samples, levels, rounds)
        rates = pdf_pages(base, pages, repeats)
    info = {**machine(), "code": code_version()}
    notes = kept_notes(args.out)  # the hand-written "## Notes" of the last report stay
    report = render(info, family, results, rates, len(pages), rounds)
    args.out.write_text(report + (f"\n{notes}" if notes else ""), encoding="utf-8")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
