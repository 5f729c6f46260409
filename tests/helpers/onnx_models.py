"""Small ONNX models written by hand, for folders the kit must refuse.

The ``onnx`` package is not a dependency and OpenVINO writes no ONNX, so the few protobuf
messages a one-node graph needs are encoded here directly (the field numbers are onnx.proto's).
OpenVINO's ONNX frontend reads the result like any exported model.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Sequence

FLOAT, INT64 = 1, 7  # TensorProto.DataType
OPSET = 13


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, dims: Sequence[int | str], elem_type: int) -> bytes:
    """ValueInfoProto: a tensor of ``dims`` (an int is a fixed size, a str a named dynamic one)."""
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d))
                     for d in dims)                                    # TensorShapeProto.dim
    tensor = _int(1, elem_type) + _bytes(2, shape)                     # TypeProto.Tensor
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor))              # name, type.tensor_type


def onnx_model(op_type: str, inputs: dict[str, Sequence[int | str]],
               output_dims: Sequence[int | str], elem_type: int = FLOAT) -> bytes:
    """A ModelProto: one ``op_type`` node from ``inputs`` (name -> dims) to output ``y``."""
    node = (b"".join(_bytes(1, name) for name in inputs) + _bytes(2, "y")
            + _bytes(3, "node") + _bytes(4, op_type))                  # NodeProto
    graph = (_bytes(1, node) + _bytes(2, "graph")
             + b"".join(_bytes(11, _value_info(n, d, elem_type)) for n, d in inputs.items())
             + _bytes(12, _value_info("y", output_dims, elem_type)))   # GraphProto
    return (_int(1, 8) + _bytes(2, "pdserving tests") + _bytes(7, graph)
            + _bytes(8, _int(2, OPSET)))                               # ModelProto, ir_version 8


def constant_model() -> bytes:
    """A ModelProto without inputs: one ``Constant`` node giving ``y`` = [1.0]."""
    tensor = _int(1, 1) + _int(2, FLOAT) + _bytes(9, struct.pack("<f", 1.0))  # TensorProto
    attr = _bytes(1, "value") + _bytes(5, tensor) + _int(20, 4)  # AttributeProto, type TENSOR
    node = _bytes(2, "y") + _bytes(3, "node") + _bytes(4, "Constant") + _bytes(5, attr)
    graph = _bytes(1, node) + _bytes(2, "graph") + _bytes(12, _value_info("y", [1], FLOAT))
    return _int(1, 8) + _bytes(2, "pdserving tests") + _bytes(7, graph) + _bytes(8, _int(2, OPSET))


# Models no OCR service can serve: each ``(inputs as the error names them, model bytes)``.
NOT_AN_IMAGE_MODEL = ("(x float32 [-1, 5])",
                      onnx_model("Identity", {"x": ["N", 5]}, ["N", 5]))
TWO_INPUTS_MODEL = ("(x float32 [-1, 3, -1, -1], z float32 [-1, 3, -1, -1])",
                    onnx_model("Add", {"x": ["N", 3, "H", "W"], "z": ["N", 3, "H", "W"]},
                               ["N", 3, "H", "W"]))
INT_IMAGE_MODEL = ("(x int64 [-1, 3, -1, -1])",
                   onnx_model("Identity", {"x": ["N", 3, "H", "W"]}, ["N", 3, "H", "W"], INT64))
NO_INPUT_MODEL = ("(none)", constant_model())


def write_onnx_folder(folder: Path, model: bytes) -> Path:
    """``folder`` holding ``model`` as ``inference.onnx`` (nothing else: no config, no settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inference.onnx").write_bytes(model)
    return folder
