"""ndarray <-> Tensor for every elem_type, via tensor_content and via the typed fields."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdserving.proto.general_model_service_pb2 import Tensor
from pdserving.dtypes import NUMPY_DTYPE, ElemType, type_name
from pdserving.rpc.codec import REPLY_FIELD, TYPED_FIELD, CodecError, from_tensor, to_tensor

NUMERIC = {0: np.int64, 1: np.float32, 2: np.int32, 3: np.float64, 4: np.int16, 5: np.float16,
           7: np.uint8, 8: np.int8, 9: np.bool_}


def test_elem_types_are_spec_codes():
    spec = {0: "int64", 1: "float32", 2: "int32", 3: "float64", 4: "int16", 5: "float16",
            6: "bfloat16", 7: "uint8", 8: "int8", 9: "bool", 20: "string"}
    assert {int(code): type_name(code) for code in ElemType} == spec
    assert {ElemType[n] for n in ("INT64", "FP32", "BF16", "STRING")} == {0, 1, 6, 20}
    assert set(NUMPY_DTYPE) == set(TYPED_FIELD) == set(ElemType)
    assert type_name(42) == "unknown"


def sample(dtype, shape=(2, 3, 4)) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) % 7 - 2).astype(dtype)


def wire(t: Tensor) -> Tensor:
    """Through serialisation, as over the network."""
    return Tensor.FromString(t.SerializeToString())


@pytest.mark.parametrize("code,dtype", NUMERIC.items())
def test_numeric_round_trip_uses_tensor_content(code, dtype):
    a = sample(dtype)
    t = wire(to_tensor(a, name="x", alias_name="image"))
    assert t.elem_type == code and list(t.shape) == [2, 3, 4] and t.tensor_content
    assert (t.name, t.alias_name) == ("x", "image")
    b = from_tensor(t)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("code,dtype", NUMERIC.items())
def test_typed_fields_are_accepted(code, dtype):
    a = sample(dtype)
    t = Tensor(elem_type=code, shape=a.shape)
    getattr(t, TYPED_FIELD[code]).extend(a.reshape(-1).tolist())
    b = from_tensor(wire(t))
    assert b.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(b, a)


# Paddle Serving 0.9's server: FP32, INT64, INT32 typed, the 16/8-bit types raw; ours adds
# FP64 and BOOL in their typed fields.
REPLY = {0: "int64_data", 1: "float_data", 2: "int_data", 3: "float64_data", 9: "bool_data"}


@pytest.mark.parametrize("code,dtype", NUMERIC.items())
def test_typed_replies_use_the_fields_of_paddle_serving_09(code, dtype):
    a = sample(dtype)
    t = wire(to_tensor(a, typed=True))
    filled = {f.name for f, _ in t.ListFields()} - {"elem_type", "shape"}
    assert filled == {REPLY.get(code, "tensor_content")}
    b = from_tensor(t)
    assert b.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(b, a)
    assert {int(c): f for c, f in REPLY_FIELD.items()} == REPLY


def test_bfloat16_travels_as_uint16_bits():
    bits = np.array([[0x3F80, 0xC000], [0x0000, 0x7F80]], np.uint16)  # 1, -2, 0, inf
    t = wire(to_tensor(bits, elem_type=6))
    assert t.elem_type == 6 and len(t.tensor_content) == 8
    np.testing.assert_array_equal(from_tensor(t), bits)
    typed = Tensor(elem_type=6, shape=[2, 2], uint32_data=bits.reshape(-1).tolist())
    np.testing.assert_array_equal(from_tensor(typed), bits)
    with pytest.raises(CodecError, match="uint16 bits"):
        to_tensor(np.ones(2, np.float32), elem_type=6)


def test_strings_use_the_data_field():
    a = np.array([["ab", "中文"], ["", "x y"]])
    t = wire(to_tensor(a))
    assert t.elem_type == 20 and list(t.data) == ["ab", "中文", "", "x y"]
    b = from_tensor(t)
    assert b.shape == (2, 2) and b.tolist() == a.tolist()
    assert from_tensor(to_tensor(np.array([b"raw"], dtype=object))).tolist() == ["raw"]


def test_lod_passes_through():
    t = wire(to_tensor(np.zeros((5, 1), np.int64), lod=[0, 2, 5]))
    assert list(t.lod) == [0, 2, 5]


def test_explicit_elem_type_converts_values():
    t = to_tensor([[1, 2, 3]], elem_type=0)
    b = from_tensor(t)
    assert b.dtype == np.int64 and b.tolist() == [[1, 2, 3]]


def test_decoded_arrays_are_views_of_the_message():
    """No copy on the way in: the array is a read-only view of the content bytes."""
    t = wire(to_tensor(np.ones((4, 4), np.float32)))
    b = from_tensor(t)
    content = b
    while isinstance(content, np.ndarray):
        content = content.base
    assert isinstance(content, bytes) and content == t.tensor_content
    assert np.shares_memory(b, np.frombuffer(content, np.uint8))
    assert not b.flags.writeable


def test_non_contiguous_and_big_endian_arrays_encode_by_value():
    a = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(from_tensor(to_tensor(a)), a)


@pytest.mark.parametrize("tensor,message", [
    (Tensor(elem_type=1, shape=[2, 2], tensor_content=b"\0" * 12), "12 bytes"),
    (Tensor(elem_type=1, shape=[2, 2], float_data=[1.0, 2.0]), "2 values"),
    (Tensor(elem_type=42, shape=[1], tensor_content=b"\0"), "unknown elem_type"),
    (Tensor(elem_type=1, shape=[-1, 2]), "negative"),
    # 3 x 2**64 elements: counted in int64 it wrapped to 0, and reshape raised a ValueError (a 500)
    (Tensor(elem_type=1, shape=[2**22, 3, 2**21, 2**21]), "0 values, .* needs 553"),
    (Tensor(elem_type=1, shape=[2**22, 3, 2**21, 2**21], tensor_content=b"\0" * 4),
     "4 bytes of content, .* needs 2213609"),
])
def test_inconsistent_tensors_are_rejected(tensor, message):
    with pytest.raises(CodecError, match=message):
        from_tensor(tensor)


def test_unsupported_dtype_is_rejected():
    with pytest.raises(CodecError, match="complex"):
        to_tensor(np.zeros(2, np.complex64))


@given(code=st.sampled_from(sorted(NUMERIC)),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=4))
def test_any_shape_round_trips(code, shape):
    a = sample(NUMERIC[code], tuple(shape))
    b = from_tensor(wire(to_tensor(a)))
    assert b.shape == a.shape and b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)
