"""The images the benchmark sends: the labelled samples, plus generated ones for size and load.

The samples are small (under 1000 px), so a generated set of pages up to 4000 px on the long side
covers what users send from phones and scanners. Everything generated is deterministic (fixed
sizes, seeded text) and is rewritten on each run into ``bench/data/`` (git-ignored).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SAMPLES_DIR = Path(__file__).parent.parent / "samples"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
SEED = 4

# (height, width) of the generated pages: phone photos, A4 scans at 300 dpi, banners, thumbnails.
PAGE_SIZES = [
    (4000, 3000), (3000, 4000), (4000, 1000), (800, 4000), (3508, 2480),
    (2480, 3508), (2000, 1500), (1920, 1080), (1080, 1920), (1600, 1200),
    (1280, 720), (1024, 768), (768, 1024), (960, 960), (800, 600),
    (640, 480), (600, 1600), (480, 360), (320, 240), (200, 800),
]
QUICK_PAGE_SIZES = [(300, 900)]

WORDS = ("invoice total amount date order number customer address payment received "
         "delivery service station north road open hours welcome store meeting notes "
         "release version review issues friday monday morning contact project lead "
         "price quantity tax discount receipt thank you please keep").split()


@dataclass(frozen=True)
class BenchImage:
    name: str
    data: bytes  # the encoded file, as a client would send it
    height: int
    width: int
    source: str = ""  # for a resized copy: the image it was made from


def request_body(image: BenchImage) -> bytes:
    """The JSON body of one OCR request for the image, as the services receive it."""
    return json.dumps({"feed": [{"image": base64.b64encode(image.data).decode()}],
                       "fetch": ["res"]}).encode()


def _encode(img: np.ndarray, name: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if name.endswith(".jpg") else []
    ok, buf = cv2.imencode(Path(name).suffix, img, params)
    if not ok:
        raise RuntimeError(f"could not encode {name}")
    return buf.tobytes()


def _image(name: str, data: bytes) -> BenchImage:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{name}: not an image")
    return BenchImage(name, data, img.shape[0], img.shape[1])


def load_samples(folder: Path = SAMPLES_DIR, limit: int | None = None) -> list[BenchImage]:
    """The sample images (file bytes unchanged), sorted by name; empty if there are none."""
    if not folder.is_dir():
        return []
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    return [_image(f.name, f.read_bytes()) for f in files[:limit]]


def load_labels(folder: Path = SAMPLES_DIR) -> dict[str, list[str]]:
    """``labels.json``: file name -> the text lines it shows (empty if missing)."""
    path = folder / "labels.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _text_page(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A light page with dark lines of words, the letters sized to stay legible after det's
    downscale to 960 px (about 1/60 of the long side)."""
    page = np.full((height, width, 3), rng.integers(215, 256, 3), dtype=np.uint8)
    scale = max(height, width) / 60 / 22  # HERSHEY_SIMPLEX is ~22 px tall at scale 1
    thickness = max(1, round(scale * 2))
    line_h = int(22 * scale * 2.2)
    margin = int(line_h * 0.8)
    for y in range(margin + line_h, height - margin, line_h):
        if rng.random() < 0.25:
            continue  # some blank lines, as in a real page
        words = rng.choice(WORDS, size=int(rng.integers(2, 8)))
        text = " ".join(words).capitalize()
        colour = tuple(int(c) for c in rng.integers(0, 80, 3))
        cv2.putText(page, text, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                    thickness, cv2.LINE_AA)
    return page


def _tiled_page(samples: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """The samples scaled into a grid filling the page (a photo of several signs/documents)."""
    cols = int(np.clip(round(width / 1000), 1, 3))
    rows = int(np.clip(round(height / 700), 1, 3))
    cell_h, cell_w = height // rows, width // cols
    page = np.full((height, width, 3), 255, dtype=np.uint8)
    for k in range(rows * cols):
        tile = samples[k % len(samples)]
        f = min(cell_h / tile.shape[0], cell_w / tile.shape[1])
        tile = cv2.resize(tile, (int(tile.shape[1] * f), int(tile.shape[0] * f)))
        r, c = divmod(k, cols)
        page[r * cell_h:r * cell_h + tile.shape[0], c * cell_w:c * cell_w + tile.shape[1]] = tile
    return page


def generate(out_dir: Path, samples: list[BenchImage], sizes=PAGE_SIZES) -> list[BenchImage]:
    """Write the generated set into ``out_dir``: text pages (PNG or JPEG), and (when there are
    samples) every third page a grid of scaled samples (JPEG, as a photo would be)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    decoded = [cv2.imdecode(np.frombuffer(s.data, np.uint8), cv2.IMREAD_COLOR) for s in samples]
    images = []
    for i, (h, w) in enumerate(sizes):
        if decoded and i % 3 == 1:
            page, kind = _tiled_page(decoded, h, w), "tiles"
        else:
            page, kind = _text_page(rng, h, w), "text"
        suffix = ".png" if kind == "text" and i % 2 else ".jpg"
        name = f"gen{i:02d}_{kind}_{w}x{h}{suffix}"
        data = _encode(page, name)
        (out_dir / name).write_bytes(data)
        images.append(BenchImage(name, data, h, w))
    return images


def size_variants(samples: list[BenchImage], count: int, seed: int = SEED) -> list[BenchImage]:
    """``count`` JPEGs of the samples at long sides from 128 to 960 px (det's limit): many
    distinct det input shapes, which is what grows shape caches in a long-running server."""
    rng = np.random.default_rng(seed)
    sides = np.linspace(128, 960, count).astype(int)
    variants = []
    for i, side in enumerate(rng.permutation(sides)):
        src = samples[i % len(samples)]
        img = cv2.imdecode(np.frombuffer(src.data, np.uint8), cv2.IMREAD_COLOR)
        f = side / max(img.shape[:2])
        img = cv2.resize(img, (max(1, int(img.shape[1] * f)), max(1, int(img.shape[0] * f))))
        name = f"var{i:03d}_{Path(src.name).stem}_{side}.jpg"
        variants.append(BenchImage(name, _encode(img, name), img.shape[0], img.shape[1],
                                   source=src.name))
    return variants
