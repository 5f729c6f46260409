"""The model config files (``serving_*_conf.prototxt`` and their binary twins).

They name a served model's feed and fetch variables, with type codes and shapes, so that a client
knows what to send and a server knows what to accept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from pdserving.dtypes import ElemType
from pdserving.files import write_if_changed
from pdserving.proto.general_model_config_pb2 import FeedVar, FetchVar, GeneralModelConfig

SERVER_CONF = "serving_server_conf.prototxt"
CLIENT_CONF = "serving_client_conf.prototxt"


@dataclass
class Var:
    """One feed or fetch variable: real name, alias clients use, type code, shape after batch."""

    name: str
    alias: str
    type_code: int = ElemType.FP32
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
    write_if_changed(path, text_format.MessageToString(conf).encode())
    write_if_changed(path.with_name(filename.replace(".prototxt", ".stream.prototxt")),
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


def by_name(variables) -> dict[str, Var]:
    """Variables by alias and by real name: clients may use either."""
    return {**{v.name: v for v in variables}, **{v.alias: v for v in variables}}
