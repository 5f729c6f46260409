"""Models made by the tests: a Paddle 3 PIR program and a legacy program OpenVINO cannot read."""

from pathlib import Path

import paddle
from paddle.pir_utils import OldIrGuard


class TinyLayer(paddle.nn.Layer):
    """Two inputs of different dtypes, two outputs: enough to check names, types and order."""

    def __init__(self):
        super().__init__()
        self.fc = paddle.nn.Linear(4, 3)

    def forward(self, x, ids):
        return paddle.nn.functional.softmax(self.fc(x)), (ids * 2).astype("float64")


def write_pir_model(folder: Path) -> Path:
    """A model exported in Paddle 3's default (PIR) mode: inference.json + .pdiparams."""
    layer = TinyLayer()
    layer.eval()
    paddle.jit.save(layer, str(folder / "inference"), input_spec=[
        paddle.static.InputSpec([None, 4], "float32", "x"),
        paddle.static.InputSpec([None, 2, 5], "int64", "ids")])
    return folder


def write_argmax_last_axis_model(source: Path, folder: Path) -> Path:
    """``source``'s legacy program with ``arg_max(axis=-1)`` as its output, as pdserving wrote
    the rec model's best path before the OpenVINO engine: Paddle runs it, OpenVINO's frontend
    fails to convert it ("-1 assigned value out of range")."""
    with OldIrGuard():
        paddle.enable_static()
        try:
            prog = paddle.static.deserialize_program((source / "inference.pdmodel").read_bytes())
            block = prog.global_block()
            feeds = [block.var(n) for n in prog.desc.get_feed_target_names()]
            (probs,) = [block.var(n) for n in prog.desc.get_fetch_target_names()]
            index = block.create_var(name="argmax_0.tmp_0", dtype="int64")
            block.append_op(type="arg_max", inputs={"X": probs}, outputs={"Out": index},
                            attrs={"axis": -1, "keepdims": True, "flatten": False, "dtype": 3})
            program = paddle.static.serialize_program(feeds, [index], program=prog)
        finally:
            paddle.disable_static()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inference.pdmodel").write_bytes(program)
    (folder / "inference.pdiparams").write_bytes((source / "inference.pdiparams").read_bytes())
    return folder
