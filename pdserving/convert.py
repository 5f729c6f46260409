"""Paddle inference model -> Paddle Serving folders, as Paddle Serving did it.

The feed and fetch variables (names, types, shapes, LoD) are read from the model file itself, so
any model converts: a legacy ``.pdmodel`` (a serialized ``ProgramDesc``), a Paddle 3 PIR
``.json`` program, or an ONNX model (OpenVINO runs it). The model files are copied into the
server folder under the names the engine looks for first (``inference.*``), with the model's
``inference.yml`` (its pipeline settings and dictionary, as PaddleX exports them) if it has one,
so the folder serves as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from pdserving.engine import EngineError
from pdserving.engine.model_folder import SETTINGS_FILE, find_model_files, read_model_io
from pdserving.files import copy_if_changed
from pdserving.modelconf import CLIENT_CONF, SERVER_CONF, Var, build_config, write_config


def inference_model_to_serving(
    dirname: str | os.PathLike,
    serving_server: str | os.PathLike = "serving_server",
    serving_client: str | os.PathLike = "serving_client",
    model_filename: str | None = None,
    params_filename: str | None = None,
    *,
    feed_alias_names: Sequence[str] | str | None = None,
    fetch_alias_names: Sequence[str] | str | None = None,
) -> tuple[list[str], list[str]]:
    """Write the server folder (model files + server config) and the client folder (client config).

    Paddle Serving's signature (``paddle_serving_client.io`` re-exports it): the first five
    arguments in its order, so a 2020 call passing them by position writes what it wrote then.
    ``model_filename``/``params_filename`` take 2020 names too (``model`` + ``params``,
    ``__model__``). Returns the feed and fetch variable names. Alias names (a list, or
    comma-separated as in Paddle Serving) replace the variable names clients use; by default
    alias = name. They are keyword-only: Paddle Serving's sixth argument was ``encryption``,
    which the kit does not do.
    """
    model_file, params_file = find_model_files(dirname, model_filename, params_filename)
    feeds, fetches = read_model_io(model_file)
    _set_aliases(feeds, feed_alias_names, "feed")
    _set_aliases(fetches, fetch_alias_names, "fetch")
    server = Path(serving_server)
    server.mkdir(parents=True, exist_ok=True)
    copy_if_changed(model_file, server / ("inference" + (model_file.suffix or ".pdmodel")))
    if params_file:  # ONNX has none
        copy_if_changed(params_file, server / "inference.pdiparams")
    if (Path(dirname) / SETTINGS_FILE).is_file():
        copy_if_changed(Path(dirname) / SETTINGS_FILE, server / SETTINGS_FILE)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert a Paddle inference model (or an ONNX model) into Paddle Serving "
                    "server/client folders.")
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
            args.params_filename, feed_alias_names=args.feed_alias_names,
            fetch_alias_names=args.fetch_alias_names)
    except (OSError, ValueError, EngineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"feed: {', '.join(feeds)}; fetch: {', '.join(fetches)}; "
          f"server: {args.serving_server}; client: {args.serving_client}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
