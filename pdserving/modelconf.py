"""The model config files of SPEC section 6 (``serving_*_conf.prototxt`` and their binary twins).

They name a served model's feed and fetch variables, with type codes and shapes, so that a client
knows what to send and a server knows what to accept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from pdserving.proto.general_model_config_pb2 import FeedVar, FetchVar, GeneralModelConfig

SERVER_CONF = "serving_server_conf.prototxt"
CLIENT_CONF = "serving_client_conf.prototxt"

# elem_type / feed_type / fetch_type codes of SPEC section 5.
DTYPE_CODES: dict[int, np.dtype] = {
    0: np.dtype(np.int64), 1: np.dtype(np.float32), 2: np.dtype(np.int32),
    3: np.dtype(np.float64), 4: np.dtype(np.int16), 5: np.dtype(np.float16),
    7: np.dtype(np.uint8), 8: np.dtype(np.int8), 9: np.dtype(np.bool_),
    20: np.dtype(object),
}
BFLOAT16 = 6  # no numpy dtype: carried as raw uint16 bits
CODE_OF_DTYPE: dict[np.dtype, int] = {v: k for k, v in DTYPE_CODES.items()}


@dataclass
class Var:
    """One feed or fetch variable: real name, alias clients use, type code, shape after batch."""

    name: str
    alias: str
    type_code: int = 1
    shape: list[int] = field(default_factory=list)
    is_lod: bool = False


def build_config(feeds: list[Var], fetches: list[Var]) -> GeneralModelConfig:
    conf = GeneralModelConfig()
    for v in feeds:
        conf.feed_var.append(FeedVar(name=v.name, alias_name=v.alias, is_lod_tensor=v.is_lod,
                                     feed_type=v.type_code, shape=v.shape))
    for v in fetches:
        conf.fetch_var.append(FetchVar(name=v.name, alias_name=v.alias, is_lod_tensor=v.is_lod,
                                       fetch_type=v.type_code, shape=v.shape))
    return conf


def write_config(conf: GeneralModelConfig, folder: str | os.PathLike, filename: str) -> Path:
    """Write the text file and its binary ``.stream`` twin into ``folder``."""
    path = Path(folder) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_format.MessageToString(conf))
    path.with_name(filename.replace(".prototxt", ".stream.prototxt")).write_bytes(
        conf.SerializeToString())
    return path


def load_config(path: str | os.PathLike) -> GeneralModelConfig:
    """Read a config file, or the server/client config inside a folder."""
    p = Path(path)
    if p.is_dir():
        for name in (SERVER_CONF, CLIENT_CONF):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise FileNotFoundError(f"{path}: no {SERVER_CONF} or {CLIENT_CONF} in this folder")
    return text_format.Parse(p.read_text(), GeneralModelConfig())


def feed_vars(conf: GeneralModelConfig) -> list[Var]:
    return [Var(v.name, v.alias_name, v.feed_type, list(v.shape), v.is_lod_tensor)
            for v in conf.feed_var]


def fetch_vars(conf: GeneralModelConfig) -> list[Var]:
    return [Var(v.name, v.alias_name, v.fetch_type, list(v.shape), v.is_lod_tensor)
            for v in conf.fetch_var]
