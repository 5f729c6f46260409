"""Paddle Serving's tensor element types and their numpy dtypes (numpy only).

The codes are ``Tensor.elem_type`` on the wire (``pdserving.rpc.codec``) and ``feed_type`` /
``fetch_type`` in the model config files (``pdserving.modelconf``): a leaf module, so that the
engines read model folders without importing the RPC layer.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class ElemType(IntEnum):
    """The element type codes. Member names are Paddle's own VarType names."""

    INT64 = 0
    FP32 = 1
    INT32 = 2
    FP64 = 3
    INT16 = 4
    FP16 = 5
    BF16 = 6      # no numpy dtype: carried and returned as its raw uint16 bits
    UINT8 = 7
    INT8 = 8
    BOOL = 9
    STRING = 20


NUMPY_DTYPE: dict[ElemType, np.dtype] = {
    ElemType.INT64: np.dtype(np.int64), ElemType.FP32: np.dtype(np.float32),
    ElemType.INT32: np.dtype(np.int32), ElemType.FP64: np.dtype(np.float64),
    ElemType.INT16: np.dtype(np.int16), ElemType.FP16: np.dtype(np.float16),
    ElemType.BF16: np.dtype(np.uint16), ElemType.UINT8: np.dtype(np.uint8),
    ElemType.INT8: np.dtype(np.int8), ElemType.BOOL: np.dtype(np.bool_),
    ElemType.STRING: np.dtype(object),
}


class UnknownElemType(ValueError):
    """A code that is not one of ``ElemType``."""


def numpy_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype arrays of this elem_type decode to (uint16 bits for bfloat16)."""
    try:
        return NUMPY_DTYPE[ElemType(elem_type)]
    except ValueError:
        raise UnknownElemType(f"unknown elem_type {elem_type}") from None


def type_name(elem_type: int) -> str:
    """A readable name for error messages: ``float32``, ``bfloat16``, ``string``."""
    if elem_type == ElemType.BF16:
        return "bfloat16"
    try:
        return numpy_dtype(elem_type).name.replace("object", "string")
    except UnknownElemType:
        return "unknown"
