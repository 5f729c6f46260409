"""Paddle inference model -> Paddle Serving folders (SPEC section 6), as Paddle Serving did it.

The feed and fetch variables (names, types, shapes, LoD) are read from the model file itself, so
any model converts: a legacy ``.pdmodel`` (a serialized ``ProgramDesc``) or a Paddle 3 PIR
``.json`` program. The model files are copied into the server folder under the names the engine
looks for first (``inference.*``), so the folder serves as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Sequence

from pdserving.engine.paddle_engine import ModelNotFound, find_model_files
from pdserving.modelconf import CLIENT_CONF, SERVER_CONF, Var, build_config, write_config

# Paddle dtype names (ProgramDesc VarType enum names) -> elem_type codes of SPEC section 5.
_LEGACY_CODES = {"INT64": 0, "FP32": 1, "INT32": 2, "FP64": 3, "INT16": 4, "FP16": 5, "BF16": 6,
                 "UINT8": 7, "INT8": 8, "BOOL": 9}
# The same for the PIR type tags ("t_f32", ...).
_PIR_CODES = {"i64": 0, "f32": 1, "i32": 2, "f64": 3, "i16": 4, "f16": 5, "bf16": 6, "ui8": 7,
              "i8": 8, "bool": 9}
STRING_CODE = 20


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
    # Importing paddle warns about a missing ccache, which would be noise on a CLI's stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from paddle.base.proto import framework_pb2

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
        return Var(desc.name, desc.name, STRING_CODE, [])
    if kind != "DENSE_TENSOR":
        raise ValueError(f"variable {desc.name} is a {kind}, not a tensor")
    tensor = desc.type.dense_tensor
    dtype = var_type.Type.Name(tensor.tensor.data_type)
    if dtype not in _LEGACY_CODES:
        raise ValueError(f"variable {desc.name} has unsupported dtype {dtype}")
    return Var(desc.name, desc.name, _LEGACY_CODES[dtype], list(tensor.tensor.dims)[1:],
               tensor.legacy_lod_level > 0)


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
            if dtype not in _PIR_CODES:
                raise ValueError(f"variable {attrs['name']} has unsupported dtype {dtype}")
            var = Var(attrs["name"], attrs["name"], _PIR_CODES[dtype], list(dims)[1:], bool(lod))
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


def inference_model_to_serving(
    dirname: str | os.PathLike,
    serving_server: str | os.PathLike = "serving_server",
    serving_client: str | os.PathLike = "serving_client",
    model_filename: str | None = None,
    params_filename: str | None = None,
    feed_alias_names: Sequence[str] | str | None = None,
    fetch_alias_names: Sequence[str] | str | None = None,
) -> tuple[list[str], list[str]]:
    """Write the server folder (model files + server config) and the client folder (client config).

    Returns the feed and fetch variable names. Alias names (a list, or comma-separated as in Paddle
    Serving) replace the variable names clients use; by default alias = name.
    """
    model_file, params_file = find_model_files(dirname, model_filename, params_filename)
    feeds, fetches = read_model_io(model_file)
    _set_aliases(feeds, feed_alias_names, "feed")
    _set_aliases(fetches, fetch_alias_names, "fetch")
    server = Path(serving_server)
    server.mkdir(parents=True, exist_ok=True)
    copy_if_changed(model_file, server / ("inference" + (model_file.suffix or ".pdmodel")))
    copy_if_changed(params_file, server / "inference.pdiparams")
    conf = build_config(feeds, fetches)
    write_config(conf, server, SERVER_CONF)
    write_config(conf, serving_client, CLIENT_CONF)
    return [v.name for v in feeds], [v.name for v in fetches]


def _set_aliases(variables: list[Var], aliases: Sequence[str] | str | None, what: str) -> None:
    if aliases is None:
        return
    names = aliases.split(",") if isinstance(aliases, str) else list(aliases)
    if len(names) != len(variables):
        raise ValueError(f"{len(names)} {what} alias names for {len(variables)} {what} variables")
    for var, alias in zip(variables, names):
        var.alias = alias


def copy_if_changed(src: Path, dst: Path) -> None:
    """Copy unless ``dst`` already is this file (same size and time): re-runs stay cheap."""
    if dst.exists():
        if dst.samefile(src):
            return
        s, d = src.stat(), dst.stat()
        if s.st_size == d.st_size and s.st_mtime_ns == d.st_mtime_ns:
            return
    shutil.copy2(src, dst)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert a Paddle inference model into Paddle Serving server/client folders.")
    parser.add_argument("--dirname", required=True, help="folder of the inference model")
    parser.add_argument("--model_filename", default=None, help="model file name in --dirname")
    parser.add_argument("--params_filename", default=None, help="params file name in --dirname")
    parser.add_argument("--serving_server", default="serving_server", help="server folder to write")
    parser.add_argument("--serving_client", default="serving_client", help="client folder to write")
    parser.add_argument("--feed_alias_names", default=None, help="comma-separated feed aliases")
    parser.add_argument("--fetch_alias_names", default=None, help="comma-separated fetch aliases")
    args = parser.parse_args(argv)
    try:
        feeds, fetches = inference_model_to_serving(
            args.dirname, args.serving_server, args.serving_client, args.model_filename,
            args.params_filename, args.feed_alias_names, args.fetch_alias_names)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"feed: {', '.join(feeds)}; fetch: {', '.join(fetches)}; "
          f"server: {args.serving_server}; client: {args.serving_client}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
