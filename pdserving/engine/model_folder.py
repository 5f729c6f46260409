"""Every fact about a model folder, read once: files, feed/fetch variables, rec height,
dictionary, best-path output.

Both engines, the model server, the converter and the services need the same facts; they get
them from one ``ModelFolder``, read before any worker or stream starts, so that a 32-px rec model
is also warmed up at 32 px. The variables come from ``serving_server_conf.prototxt`` when the
folder has one (it may carry aliases), else from the model file itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdserving import modelconf
from pdserving.dtypes import ElemType, numpy_dtype
from pdserving.engine import import_paddle
from pdserving.modelconf import Var

# (model file, params file) pairs looked for in a model folder, most common first.
MODEL_FILE_PAIRS = [
    ("inference.pdmodel", "inference.pdiparams"),
    ("inference.json", "inference.pdiparams"),
    ("model.pdmodel", "model.pdiparams"),
    ("model.json", "model.pdiparams"),
    ("__model__", "__params__"),
    ("model", "params"),  # PaddleOCR's 2020 inference models
]
DICT_NAME = "ppocr_keys_v1.txt"          # the rec dictionary, beside the rec model
BEST_PATH = "ctc_best_path_0.tmp_0"      # the bundled rec model's (N, T, 2) output

# PIR type tags ("t_f32", ...) -> elem_types (ProgramDesc dtypes are ElemType's member names).
_PIR_TYPES = {"i64": ElemType.INT64, "f32": ElemType.FP32, "i32": ElemType.INT32,
              "f64": ElemType.FP64, "i16": ElemType.INT16, "f16": ElemType.FP16,
              "bf16": ElemType.BF16, "ui8": ElemType.UINT8, "i8": ElemType.INT8,
              "bool": ElemType.BOOL}


class ModelNotFound(FileNotFoundError):
    """The folder holds no Paddle inference model."""


@dataclass(frozen=True)
class ModelFolder:
    """A Paddle inference model folder, as the engines and services see it."""

    path: Path
    model_file: Path
    params_file: Path
    feeds: tuple[Var, ...]
    fetches: tuple[Var, ...]

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
        return cls(folder, model_file, params_file, tuple(feeds), tuple(fetches))

    @classmethod
    def of(cls, folder: "ModelFolder | str | os.PathLike") -> "ModelFolder":
        """``folder`` itself, or the folder at that path read (engines take either)."""
        return folder if isinstance(folder, ModelFolder) else cls.read(folder)

    @property
    def name(self) -> str:
        return self.path.name

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
        return self.path / DICT_NAME

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
    """The model and params files of an inference model folder (explicit names win)."""
    d = Path(dirname)
    if not d.is_dir():
        raise ModelNotFound(f"{d}: not a folder")
    pairs = [(model_filename, params_filename)] if model_filename else MODEL_FILE_PAIRS
    for model, params in pairs:
        if (d / model).is_file():
            params = params or _guess_params(d, model)
            if params and (d / params).is_file():
                return d / model, d / params
    raise ModelNotFound(
        f"{d}: no Paddle inference model here (looked for "
        + ", ".join(f"{m}+{p or 'a params file'}" for m, p in pairs) + ")")


def _guess_params(d: Path, model: str) -> str | None:
    stem = model.rsplit(".", 1)[0]
    for cand in (stem + ".pdiparams", "__params__", "params"):
        if (d / cand).is_file():
            return cand
    return None


def read_model_io(model_file: str | os.PathLike) -> tuple[list[Var], list[Var]]:
    """Feed and fetch variables of a model file, in feed/fetch column order (alias = name)."""
    path = Path(model_file)
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
