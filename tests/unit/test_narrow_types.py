"""The narrow storage types (runtime_c/mlcc_convert.h: the float8 family, float8e8m0, float4e2m1, int4/uint4,
int2/uint2): every bit pattern widens to ml_dtypes' value, and float32 (and integer) values convert to ONNX
Cast's result (saturating and not, every round mode), edge cases included; Q/DQ through them."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import run_mlcc
from mlcc.ir.dtypes import F4E2M1, F8E8M0, FLOAT8, SUB_BYTE_INTS
from mlcc.ops.common import cast_array

NARROW = (*FLOAT8, F8E8M0, F4E2M1, *SUB_BYTE_INTS)


def codes(dtype: np.dtype) -> np.ndarray:
    """Every valid bit pattern of the numpy (ml_dtypes) type `dtype`, one per byte."""
    width = {"float4_e2m1fn": 16, "int4": 16, "uint4": 16, "int2": 4, "uint2": 4}.get(np.dtype(dtype).name, 256)
    return np.arange(width, dtype=np.uint8).view(dtype)


def cast_model(src: int, dst: int, n: int, opset: int = 21, **attrs):
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=dst, **attrs)],
        "cast",
        [helper.make_tensor_value_info("x", src, [n])],
        [helper.make_tensor_value_info("y", dst, [n])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def probes(dtype: np.dtype) -> np.ndarray:
    """float32 values around every representable value of `dtype` (the value, its neighbours, the halfway
    points to the next one), beyond its range, signed zeros, infinities, NaN, and random values."""
    values = codes(dtype).astype(np.float32)
    finite = np.unique(values[np.isfinite(values)])
    mids = (finite[:-1] + finite[1:]) / 2
    big = float((ml_dtypes.finfo if "float" in np.dtype(dtype).name else ml_dtypes.iinfo)(dtype).max)
    extra = [0.0, -0.0, np.inf, -np.inf, np.nan, big * 1.01, big * 1.2, -big * 1.5, 1e30, -1e-30, 1e-30]
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):
        wild = rng.standard_normal(500).astype(np.float32) * np.float32(big) / 4
    out = np.concatenate([finite, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), extra, wild])
    return out.astype(np.float32)


def same(got: np.ndarray, want: np.ndarray) -> bool:
    g, w = got.astype(np.float32), want.astype(np.float32)
    return bool(np.all((g == w) & (np.signbit(g) == np.signbit(w)) | (np.isnan(g) & np.isnan(w))))


@pytest.mark.parametrize("dtype", NARROW, ids=lambda d: d.name)
def test_every_bit_pattern_widens_exactly(dtype, tmp_path):
    bits = codes(dtype.np)
    (got,) = run_mlcc(cast_model(dtype.onnx, TensorProto.FLOAT, bits.size, opset=25), {"x": bits}, tmp_path)
    assert same(got, bits.astype(np.float32))


@pytest.mark.parametrize("dtype", SUB_BYTE_INTS, ids=lambda d: d.name)
def test_sub_byte_integers_truncate_floats_and_wrap_integers(dtype, tmp_path):
    x = probes(dtype.np)
    (got,) = run_mlcc(cast_model(TensorProto.FLOAT, dtype.onnx, x.size, opset=25), {"x": x}, tmp_path / "f")
    with np.errstate(invalid="ignore"):
        want = x.astype(dtype.np)  # numpy's (ml_dtypes') result, as ONNX's reference
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    i = np.arange(-300, 300, 7, dtype=np.int32)
    (got,) = run_mlcc(cast_model(TensorProto.INT32, dtype.onnx, i.size, opset=25), {"x": i}, tmp_path / "i")
    assert np.array_equal(got.view(np.uint8), i.astype(dtype.np).view(np.uint8))


@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("saturate", [1, 0])
def test_e8m0_rounds_like_onnx_cast(mode, saturate, tmp_path):
    x = probes(F8E8M0.np)
    model = cast_model(TensorProto.FLOAT, F8E8M0.onnx, x.size, opset=25, saturate=saturate, round_mode=mode)
    (got,) = run_mlcc(model, {"x": x}, tmp_path)
    assert np.array_equal(got.view(np.uint8), cast_array(x, F8E8M0, bool(saturate), mode).view(np.uint8))


def test_float4_rounds_ties_to_even_and_saturates(tmp_path):
    x = probes(F4E2M1.np)
    (got,) = run_mlcc(cast_model(TensorProto.FLOAT, F4E2M1.onnx, x.size, opset=25), {"x": x}, tmp_path)
    assert np.array_equal(got.view(np.uint8), x.astype(F4E2M1.np).view(np.uint8))


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("dtype", FLOAT8, ids=lambda d: d.name)
def test_float32_rounds_like_onnx_cast(dtype, saturate, tmp_path):
    x = probes(dtype.np)
    model = cast_model(TensorProto.FLOAT, dtype.onnx, x.size, saturate=saturate)
    (got,) = run_mlcc(model, {"x": x}, tmp_path)
    want = cast_array(x, dtype, bool(saturate))
    bad = ~(
        (got.view(np.uint8) == want.view(np.uint8))
        | (np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32)))
    )
    assert not bad.any(), list(zip(x[bad][:5], got[bad][:5], want[bad][:5]))


def test_quantize_dequantize_through_float8(tmp_path):
    scale = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    zero = numpy_helper.from_array(np.zeros((), ml_dtypes.float8_e4m3fn), "z")
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s"], ["y"]),
        ],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [64]),
            helper.make_tensor_value_info("q", TensorProto.FLOAT8E4M3FN, [64]),
        ],
        [scale, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    x = np.linspace(-300, 300, 64).astype(np.float32)
    y, q = run_mlcc(model, {"x": x}, tmp_path)
    want_q = cast_array(x / np.float32(0.5), FLOAT8[0])  # saturates at 448
    assert q.dtype == ml_dtypes.float8_e4m3fn and same(q, want_q)
    assert same(y, want_q.astype(np.float32) * np.float32(0.5))


@pytest.mark.parametrize("dtype", [*SUB_BYTE_INTS, F4E2M1], ids=lambda d: d.name)
def test_packed_initializers_unpack_and_dequantize(dtype, tmp_path):
    """ONNX files pack sub-byte tensors two (four) to a byte; an odd count leaves a half-filled last byte."""
    values = np.resize(codes(dtype.np), 7)
    w = numpy_helper.from_array(values, "w")  # packed in the file
    assert len(w.raw_data) < values.size
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["w", "s"], ["y"])],
        "dq",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],  # a run-time scale: nothing folds
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [values.size])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (got,) = run_mlcc(model, {"s": np.array(0.25, np.float32)}, tmp_path)
    assert same(got, values.astype(np.float32) * np.float32(0.25))
