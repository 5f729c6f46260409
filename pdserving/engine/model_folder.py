"""Every fact about a model folder, read once: files, feed/fetch variables, the pipeline
settings it records, rec height, dictionary, best-path output.

Both engines, the model server, the converter and the services need the same facts; they get
them from one ``ModelFolder``, read before any worker or stream starts, so that a 32-px rec model
is also warmed up at 32 px. The variables come from ``serving_server_conf.prototxt`` when the
folder has one (it may carry aliases), else from the model file itself. The pipeline settings
(det resize and thresholds, rec input shape, dictionary) come from its ``inference.yml``, in
PaddleX's layout (docs/design.md §5.2); a folder without one gets the 2020 kit's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pdserving import modelconf
from pdserving.dtypes import ElemType, numpy_dtype, type_name
from pdserving.engine import EngineError, import_paddle
from pdserving.modelconf import Var
from pdserving.ops.ctc import load_dictionary
from pdserving.ops.db import DetSettings

# (model file, params file) pairs looked for in a model folder, most common first.
MODEL_FILE_PAIRS = [
    ("inference.pdmodel", "inference.pdiparams"),
    ("inference.json", "inference.pdiparams"),
    ("model.pdmodel", "model.pdiparams"),
    ("model.json", "model.pdiparams"),
    ("__model__", "__params__"),
    ("model", "params"),  # PaddleOCR's 2020 inference models
    ("inference.onnx", None),  # ONNX: one file, weights inside
    ("model.onnx", None),
]
DICT_NAME = "ppocr_keys_v1.txt"          # the rec dictionary of a folder that names none
BEST_PATH = "ctc_best_path_0.tmp_0"      # a rec model's (N, T, 2) output (docs/design.md §3.8)
SETTINGS_FILE = "inference.yml"

# PIR type tags ("t_f32", ...) -> elem_types (ProgramDesc dtypes are ElemType's member names).
_PIR_TYPES = {"i64": ElemType.INT64, "f32": ElemType.FP32, "i32": ElemType.INT32,
              "f64": ElemType.FP64, "i16": ElemType.INT16, "f16": ElemType.FP16,
              "bf16": ElemType.BF16, "ui8": ElemType.UINT8, "i8": ElemType.INT8,
              "bool": ElemType.BOOL}


class ModelNotFound(FileNotFoundError):
    """The folder holds no inference model."""


class BadFolder(EngineError):
    """The folder holds a model, but it or its settings cannot work: one line naming why."""


@dataclass(frozen=True)
class FolderSettings:
    """What a folder's ``inference.yml`` records for the pipeline (None: not recorded)."""

    family: str | None = None
    model_name: str | None = None
    det: DetSettings | None = None
    rec_shape: tuple[int, int, int] | None = None    # RecResizeImg image_shape: C, H, min W
    dictionary: str | tuple[str, ...] | None = None  # a file in the folder, or the characters

    @classmethod
    def read(cls, folder: Path) -> "FolderSettings":
        path = folder / SETTINGS_FILE
        if not path.is_file():
            return cls()
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) or {}
            glob, post = doc.get("Global") or {}, doc.get("PostProcess") or {}
            ops = {name: args or {} for op in (doc.get("PreProcess") or {}).get(
                "transform_ops", []) for name, args in op.items()}
            det = None
            if post.get("name") == "DBPostProcess":
                resize = {k: v for k, v in ops.get("DetResizeForTest", {}).items()
                          if k in DetSettings.__dataclass_fields__}
                db = {k: v for k, v in post.items() if k in DetSettings.__dataclass_fields__}
                det = DetSettings(**{**resize, **db})
                if det.limit_type not in ("max", "min"):
                    raise ValueError(f"limit_type {det.limit_type!r} is not max or min")
                if det.rounding not in ("down", "nearest"):
                    raise ValueError(f"rounding {det.rounding!r} is not down or nearest")
            shape = ops.get("RecResizeImg", {}).get("image_shape")
            chars = post.get("character_dict")
            return cls(glob.get("family"), glob.get("model_name"), det,
                       tuple(int(d) for d in shape) if shape else None,
                       tuple(str(c) for c in chars) if chars else post.get("character_dict_path"))
        except (yaml.YAMLError, AttributeError, TypeError, ValueError) as e:
            raise BadFolder(f"{path}: unreadable settings ({str(e).splitlines()[0]})") from None


@dataclass(frozen=True)
class ModelFolder:
    """A Paddle inference model folder, as the engines and services see it."""

    path: Path
    model_file: Path
    params_file: Path | None          # None for ONNX (the weights are in the model file)
    feeds: tuple[Var, ...]
    fetches: tuple[Var, ...]
    settings: FolderSettings = FolderSettings()

    @classmethod
    def read(cls, path: str | os.PathLike, model_filename: str | None = None,
             params_filename: str | None = None) -> "ModelFolder":
        folder = Path(path)
        model_file, params_file = find_model_files(folder, model_filename, params_filename)
        if (folder / modelconf.SERVER_CONF).is_file():
            conf = modelconf.load_config(folder / modelconf.SERVER_CONF)
            feeds, fetches = modelconf.feed_vars(conf), modelconf.fetch_vars(conf)
        else:
            feeds, fetches = read_model_io(model_file)
        return cls(folder, model_file, params_file, tuple(feeds), tuple(fetches),
                   FolderSettings.read(folder))

    @classmethod
    def of(cls, folder: "ModelFolder | str | os.PathLike") -> "ModelFolder":
        """``folder`` itself, or the folder at that path read (engines take either)."""
        return folder if isinstance(folder, ModelFolder) else cls.read(folder)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_onnx(self) -> bool:
        return self.model_file.suffix == ".onnx"

    @property
    def det_settings(self) -> DetSettings:
        return self.settings.det or DetSettings()

    @property
    def rec_min_width(self) -> int | None:
        """The floor of a rec batch's width, when the folder records one."""
        return self.settings.rec_shape[2] if self.settings.rec_shape else None

    @property
    def rec_height(self) -> int | None:
        """The input height of a text-line model (first feed ``[3, H, -1]``), else None."""
        shape = self.feeds[0].shape if self.feeds else []
        return shape[1] if len(shape) == 3 and shape[1] > 0 and shape[2] <= 0 else None

    @property
    def takes_pages(self) -> bool:
        """The first feed is an image of any size (``[3, -1, -1]``): a page model, as det is."""
        shape = self.feeds[0].shape if self.feeds else []
        return len(shape) == 3 and shape[1] <= 0 and shape[2] <= 0

    @property
    def best_path_classes(self) -> int | None:
        """The class count when the first output is the best path (the bundled rec model) and
        None when it is the class probabilities (a converted model)."""
        if len(self.fetches) > 1 and self.fetches[0].name == BEST_PATH:
            return self.fetches[1].shape[-1]
        return None

    @property
    def dictionary(self) -> Path:
        """The dictionary file (a folder whose ``inference.yml`` lists the characters itself
        has none; ``charset`` reads either)."""
        named = self.settings.dictionary
        return self.path / (named if isinstance(named, str) else DICT_NAME)

    def charset(self) -> list[str]:
        """The rec model's characters, checked against its output width (the CTC blank and the
        space are the two classes a dictionary does not list)."""
        named = self.settings.dictionary
        if isinstance(named, tuple):
            chars = list(named)
        else:
            try:
                chars = load_dictionary(self.dictionary)
            except OSError as e:
                raise BadFolder(f"{self.path}: no dictionary ({e.strerror}: "
                                f"{self.dictionary.name})") from None
        classes = self.best_path_classes or (self.fetches[0].shape[-1] if self.fetches else -1)
        if classes > 0 and classes not in (len(chars) + 1, len(chars) + 2):
            raise BadFolder(f"{self.path}: the dictionary has {len(chars)} characters, but the "
                            f"model reads {classes} classes (expected {len(chars) + 2}): "
                            f"a dictionary of another model?")
        return chars

    def zeros(self, batch: int, *sides: int) -> dict[str, np.ndarray]:
        """Zero feeds of ``batch`` items whose dynamic dims take ``sides`` in order (the last
        one repeats; 320 if none): the warm-up inputs."""
        feeds = {}
        for v in self.feeds:
            fill = list(sides or (320,))
            shape = [batch] + [d if d > 0 else (fill.pop(0) if len(fill) > 1 else fill[0])
                               for d in v.shape]
            feeds[v.name] = np.zeros(shape, numpy_dtype(v.type_code))
        return feeds

    def warmup_feeds(self, line_batch: int = 6, line_width: int = 320,
                     page_sides: tuple[int, ...] = (640, 960)) -> list[dict[str, np.ndarray]]:
        """Inputs shaped as the OCR services send them, run once at start so that no request
        pays for a shape's set-up: a text-line model gets one line and a full batch at the
        floor width, an image model (``[3, -1, -1]``) two page sizes, others one batch of 1."""
        if self.rec_height:
            return [self.zeros(n, line_width) for n in (1, line_batch)]
        if self.takes_pages:
            return [self.zeros(1, side) for side in page_sides]
        return [self.zeros(1)]

    def shape_extremes(self, line_max_width: int = 3200,
                       page_min_side: int = 32) -> list[dict[str, np.ndarray]]:
        """Beyond the warm-up shapes, the extremes the services send: a text line at the widest
        a batch gets (one line), a page at the smallest det input. With the warm-up inputs they
        span TensorRT's shape ranges."""
        if self.rec_height:
            return [self.zeros(1, line_max_width)]
        if self.takes_pages:
            return [self.zeros(1, page_min_side)]
        return []


def find_model_files(dirname: str | os.PathLike, model_filename: str | None = None,
                     params_filename: str | None = None) -> tuple[Path, Path]:
    """The model and params files of an inference model folder (explicit names win; an ONNX
    model has no params file)."""
    d = Path(dirname)
    if not d.is_dir():
        raise ModelNotFound(f"{d}: not a folder")
    pairs = [(model_filename, params_filename)] if model_filename else MODEL_FILE_PAIRS
    for model, params in pairs:
        if (d / model).is_file():
            if model.endswith(".onnx"):
                return d / model, None
            params = params or _guess_params(d, model)
            if params and (d / params).is_file():
                return d / model, d / params
    raise ModelNotFound(
        f"{d}: no inference model here (looked for "
        + ", ".join(m if m.endswith(".onnx") else f"{m}+{p or 'a params file'}"
                    for m, p in pairs) + ")")


def _guess_params(d: Path, model: str) -> str | None:
    stem = model.rsplit(".", 1)[0]
    for cand in (stem + ".pdiparams", "__params__", "params"):
        if (d / cand).is_file():
            return cand
    return None


def read_model_io(model_file: str | os.PathLike) -> tuple[list[Var], list[Var]]:
    """Feed and fetch variables of a model file, in feed/fetch column order (alias = name)."""
    path = Path(model_file)
    if path.suffix == ".onnx":
        return _read_onnx(path)
    try:
        if path.suffix == ".json":
            return _read_pir(json.loads(path.read_bytes()))
        return _read_program_desc(path.read_bytes())
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ModelNotFound(f"{path}: not a readable Paddle inference model ({e})") from None


def _read_program_desc(data: bytes) -> tuple[list[Var], list[Var]]:
    from google.protobuf.message import DecodeError

    # The ProgramDesc schema ships with paddle; only its generated protobuf module is used here.
    framework_pb2 = import_paddle().base.proto.framework_pb2

    program = framework_pb2.ProgramDesc()
    try:
        program.ParseFromString(data)
    except DecodeError as e:
        raise ValueError("not a ProgramDesc") from e
    if not program.blocks:
        raise ValueError("empty program")
    block = program.blocks[0]
    descs = {v.name: v for v in block.vars}
    feeds, fetches = [], []
    for op in block.ops:
        if op.type in ("feed", "fetch"):
            slots = op.outputs if op.type == "feed" else op.inputs
            col = next((a.i for a in op.attrs if a.name == "col"), 0)
            var = _legacy_var(descs[slots[0].arguments[0]], framework_pb2.VarType)
            (feeds if op.type == "feed" else fetches).append((col, var))
    if not feeds or not fetches:
        raise ValueError("no feed or fetch ops: not an inference program")
    return _by_column(feeds), _by_column(fetches)


def _legacy_var(desc, var_type) -> Var:
    kind = var_type.Type.Name(desc.type.type)
    if kind in ("STRING", "STRINGS", "PSTRING"):
        return Var(desc.name, desc.name, ElemType.STRING, [])
    # Paddle 3 says DENSE_TENSOR (field dense_tensor, legacy_lod_level); Paddle 2.6, the last
    # GPU build on PyPI, says LOD_TENSOR (field lod_tensor, lod_level) for the same thing.
    if kind not in ("DENSE_TENSOR", "LOD_TENSOR"):
        raise ValueError(f"variable {desc.name} is a {kind}, not a tensor")
    tensor = getattr(desc.type, kind.lower())
    dtype = var_type.Type.Name(tensor.tensor.data_type)
    if dtype not in ElemType.__members__ or dtype == "STRING":
        raise ValueError(f"variable {desc.name} has unsupported dtype {dtype}")
    lod_level = getattr(tensor, "legacy_lod_level", None)
    if lod_level is None:
        lod_level = tensor.lod_level
    return Var(desc.name, desc.name, ElemType[dtype], list(tensor.tensor.dims)[1:],
               lod_level > 0)


def _read_pir(program: dict) -> tuple[list[Var], list[Var]]:
    # PIR serialisation: op "#" is "<dialect>.<op>", attributes "A" are {"N": name, "AT": {"D": v}},
    # an output type "TT" is {"D": [dtype tag, dims, layout, lod, offset]}.
    ops = program["program"]["regions"][0]["blocks"][0]["ops"]
    feeds, fetches = [], []
    for op in ops:
        kind = op["#"].rsplit(".", 1)[-1]
        if kind in ("data", "fetch"):
            attrs = {a["N"]: a["AT"]["D"] for a in op["A"]}
            dtype_tag, dims, _, lod, _ = op["O"][0]["TT"]["D"]
            dtype = dtype_tag["#"].rsplit("t_", 1)[-1]
            if dtype not in _PIR_TYPES:
                raise ValueError(f"variable {attrs['name']} has unsupported dtype {dtype}")
            var = Var(attrs["name"], attrs["name"], _PIR_TYPES[dtype], list(dims)[1:], bool(lod))
            if kind == "data":
                feeds.append(var)
            else:
                fetches.append((attrs.get("col", len(fetches)), var))
    if not feeds or not fetches:
        raise ValueError("no data or fetch ops: not an inference program")
    return feeds, _by_column(fetches)


def _by_column(pairs: list[tuple[int, Var]]) -> list[Var]:
    """Variables in their feed/fetch column order (the order predictors list them)."""
    return [v for _, v in sorted(pairs, key=lambda cv: cv[0])]


def _read_onnx(path: Path) -> tuple[list[Var], list[Var]]:
    """An ONNX model's inputs and outputs, read by OpenVINO (the engine that runs it). A text
    line model (input ``[3, H, -1]``, one (N, T, C) output) also lists ``BEST_PATH`` first:
    the engine appends it to the graph (docs/design.md §3.8)."""
    from pdserving.engine.openvino_engine import ModelUnreadable, core

    try:
        model = core().read_model(str(path))
    except ModelUnreadable:
        raise
    except Exception as e:
        raise ModelNotFound(f"{path}: not a readable ONNX model ({str(e).splitlines()[0]})")

    def var(port) -> Var:
        name = port.get_any_name()
        dtype = _OV_TYPES.get(port.get_element_type().get_type_name())
        if dtype is None:
            raise BadFolder(f"{path}: {name} has type {port.get_element_type()}, which the "
                            f"kit does not serve")
        dims = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()][1:]
        return Var(name, name, dtype, dims)

    feeds = [var(p) for p in model.inputs]
    fetches = [var(p) for p in model.outputs]
    f = feeds[0].shape if len(feeds) == 1 else []
    if len(f) != 3 or f[0] != 3 or feeds[0].type_code != ElemType.FP32:
        given = ", ".join(f"{v.name} {type_name(v.type_code)} {[-1, *v.shape]}" for v in feeds)
        raise BadFolder(f"{path}: inputs ({given or 'none'}); the OCR models take one float32 "
                        f"image batch [N, 3, H, W]")
    if f[1] > 0 and f[2] <= 0 and len(fetches) == 1 and len(fetches[0].shape) == 2:
        fetches.insert(0, Var(BEST_PATH, BEST_PATH, ElemType.FP32, [-1, 2]))
    return feeds, fetches


_OV_TYPES = {"f32": ElemType.FP32, "i64": ElemType.INT64, "i32": ElemType.INT32,
             "f64": ElemType.FP64, "f16": ElemType.FP16, "u8": ElemType.UINT8,
             "i8": ElemType.INT8, "boolean": ElemType.BOOL}
