"""ndarray <-> ``Tensor`` message (SPEC section 5).

Numbers travel as raw little-endian bytes in ``tensor_content``: one copy on the way out, none on
the way in (decoded arrays are read-only views of the message bytes). Senders written against
Paddle Serving's typed repeated fields (``float_data``, ``int64_data``, ...) are understood too.
bfloat16 has no numpy dtype, so it is carried and returned as its raw uint16 bits.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pdserving.modelconf import BFLOAT16, CODE_OF_DTYPE, DTYPE_CODES
from pdserving.proto.general_model_service_pb2 import Tensor

STRING = 20
BFLOAT16_BITS = np.dtype(np.uint16)

# The typed repeated field a sender may use instead of tensor_content, per elem_type.
TYPED_FIELD = {
    0: "int64_data", 1: "float_data", 2: "int_data", 3: "float64_data", 4: "int_data",
    5: "float_data", BFLOAT16: "uint32_data", 7: "int_data", 8: "int_data", 9: "bool_data",
    STRING: "data",
}


class CodecError(ValueError):
    """A Tensor that does not describe an array (unknown type, size not matching the shape)."""


def numpy_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype arrays of this elem_type decode to (uint16 bits for bfloat16)."""
    if elem_type == BFLOAT16:
        return BFLOAT16_BITS
    try:
        return DTYPE_CODES[elem_type]
    except KeyError:
        raise CodecError(f"unknown elem_type {elem_type}") from None


def elem_type_of(array: np.ndarray) -> int:
    """The elem_type code of an array's dtype; strings (str or object) are 20."""
    dt = array.dtype
    if dt.kind in "OUS":
        return STRING
    if dt.name == "bfloat16":  # ml_dtypes / paddle bfloat16 arrays
        return BFLOAT16
    try:
        return CODE_OF_DTYPE[dt.newbyteorder("=")]
    except KeyError:
        raise CodecError(f"dtype {dt} has no elem_type (pass elem_type=6 for bfloat16 bits)") \
            from None


def to_tensor(array: np.ndarray, name: str = "", alias_name: str = "",
              lod: Sequence[int] | None = None, elem_type: int | None = None) -> Tensor:
    """Encode ``array`` (shape including the batch dimension) as a Tensor."""
    array = np.asarray(array)
    code = elem_type_of(array) if elem_type is None else elem_type
    t = Tensor(elem_type=code, shape=array.shape, name=name, alias_name=alias_name,
               lod=lod or ())
    if code == STRING:
        t.data.extend(_as_str(v) for v in array.reshape(-1))
    else:
        if array.dtype.name == "bfloat16":
            array = array.view(BFLOAT16_BITS)
        if code == BFLOAT16 and array.dtype != BFLOAT16_BITS:
            raise CodecError(f"bfloat16 is sent as raw uint16 bits, got {array.dtype}")
        # An explicit elem_type converts the values (e.g. a list of ints for an int64 feed).
        wire = numpy_dtype(code).newbyteorder("<")
        t.tensor_content = np.ascontiguousarray(array, wire).tobytes()
    return t


def from_tensor(t: Tensor) -> np.ndarray:
    """Decode a Tensor to an array of its shape (from tensor_content or a typed field)."""
    shape = tuple(t.shape)
    if any(d < 0 for d in shape):
        raise CodecError(f"tensor {_label(t)}: negative dimension in shape {list(shape)}")
    count = int(np.prod(shape, dtype=np.int64))
    dtype = numpy_dtype(t.elem_type)
    if t.elem_type == STRING:
        values = np.array(list(t.data), dtype=object)
    elif t.tensor_content:
        wire = dtype.newbyteorder("<")
        if len(t.tensor_content) != count * wire.itemsize:
            raise CodecError(
                f"tensor {_label(t)}: {len(t.tensor_content)} bytes of content, shape "
                f"{list(shape)} of {dtype} needs {count * wire.itemsize}")
        values = np.frombuffer(t.tensor_content, dtype=wire)
        if wire != dtype:
            values = values.astype(dtype)
    else:
        values = np.asarray(getattr(t, TYPED_FIELD[t.elem_type]), dtype=dtype)
    if values.size != count:
        raise CodecError(f"tensor {_label(t)}: {values.size} values, shape {list(shape)} "
                         f"needs {count}")
    return values.reshape(shape)


def _as_str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _label(t: Tensor) -> str:
    return repr(t.alias_name or t.name or "?")
