"""ndarray <-> ``Tensor`` message, in the element types of ``pdserving.dtypes``.

Numbers travel as raw little-endian bytes in ``tensor_content``: one copy on the way out, none on
the way in (decoded arrays are read-only views of the message bytes). Senders written against
Paddle Serving's typed repeated fields (``float_data``, ``int64_data``, ...) are understood too,
and can be answered in them (``to_tensor(typed=True)``).
bfloat16 has no numpy dtype, so it is carried and returned as its raw uint16 bits.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from pdserving import dtypes
from pdserving.dtypes import NUMPY_DTYPE, ElemType, UnknownElemType
from pdserving.proto.general_model_service_pb2 import Tensor

_OF_DTYPE = {dt: code for code, dt in NUMPY_DTYPE.items() if code != ElemType.BF16}

# The typed repeated field a sender may use instead of tensor_content, per elem_type.
TYPED_FIELD: dict[ElemType, str] = {
    ElemType.INT64: "int64_data", ElemType.FP32: "float_data", ElemType.INT32: "int_data",
    ElemType.FP64: "float64_data", ElemType.INT16: "int_data", ElemType.FP16: "float_data",
    ElemType.BF16: "uint32_data", ElemType.UINT8: "int_data", ElemType.INT8: "int_data",
    ElemType.BOOL: "bool_data", ElemType.STRING: "data",
}

# The typed field Paddle Serving 0.9's server answered in, per elem_type
# (its response op); it sent FP16, INT8, UINT8 raw. FP64 and BOOL, which it could not
# answer at all, get the fields the .proto has for them; INT16 and BF16 stay raw, as FP16.
REPLY_FIELD: dict[ElemType, str] = {
    code: TYPED_FIELD[code]
    for code in (ElemType.INT64, ElemType.FP32, ElemType.INT32, ElemType.FP64, ElemType.BOOL)
}


class CodecError(ValueError):
    """A Tensor that does not describe an array (unknown type, size not matching the shape)."""


def numpy_dtype(elem_type: int) -> np.dtype:
    """``dtypes.numpy_dtype``, an unknown code being a ``CodecError``."""
    try:
        return dtypes.numpy_dtype(elem_type)
    except UnknownElemType as e:
        raise CodecError(str(e)) from None


def elem_type_of(array: np.ndarray) -> int:
    """The elem_type code of an array's dtype; strings (str or object) are 20."""
    dt = array.dtype
    if dt.kind in "OUS":
        return ElemType.STRING
    if dt.name == "bfloat16":  # ml_dtypes / paddle bfloat16 arrays
        return ElemType.BF16
    try:
        return _OF_DTYPE[dt.newbyteorder("=")]
    except KeyError:
        raise CodecError(f"dtype {dt} has no elem_type (pass elem_type=6 for bfloat16 bits)") \
            from None


def to_tensor(array: np.ndarray, name: str = "", alias_name: str = "",
              lod: Sequence[int] | None = None, elem_type: int | None = None,
              typed: bool = False) -> Tensor:
    """Encode ``array`` (shape including the batch dimension) as a Tensor.

    ``typed``: in the typed field of ``REPLY_FIELD`` rather than ``tensor_content``, for clients
    written against Paddle Serving 0.9's server, which read only those fields.
    """
    array = np.asarray(array)
    code = elem_type_of(array) if elem_type is None else elem_type
    t = Tensor(elem_type=code, shape=array.shape, name=name, alias_name=alias_name,
               lod=lod or ())
    if code == ElemType.STRING:
        t.data.extend(_as_str(v) for v in array.reshape(-1))
    else:
        bits = NUMPY_DTYPE[ElemType.BF16]
        if array.dtype.name == "bfloat16":
            array = array.view(bits)
        if code == ElemType.BF16 and array.dtype != bits:
            raise CodecError(f"bfloat16 is sent as raw uint16 bits, got {array.dtype}")
        # An explicit elem_type converts the values (e.g. a list of ints for an int64 feed).
        if typed and code in REPLY_FIELD:  # tolist: 4x faster to extend than numpy scalars
            getattr(t, REPLY_FIELD[code]).extend(
                np.asarray(array, numpy_dtype(code)).reshape(-1).tolist())
        else:
            wire = numpy_dtype(code).newbyteorder("<")
            t.tensor_content = np.ascontiguousarray(array, wire).tobytes()
    return t


def from_tensor(t: Tensor) -> np.ndarray:
    """Decode a Tensor to an array of its shape (from tensor_content or a typed field)."""
    shape = tuple(t.shape)
    if any(d < 0 for d in shape):
        raise CodecError(f"tensor {_label(t)}: negative dimension in shape {list(shape)}")
    count = math.prod(shape)  # Python ints: int64 would wrap (2**22 x 3 x 2**21 x 2**21 -> 0)
    dtype = numpy_dtype(t.elem_type)
    if t.elem_type == ElemType.STRING:
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
