"""The float8 storage types (runtime_c/mlcc_convert.h): every bit pattern widens to ml_dtypes' value, and
float32 values round to ONNX Cast's result (saturating and not), edge cases included; Q/DQ through them."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import run_mlcc
from mlcc.ir.dtypes import FLOAT8
from mlcc.ops.common import cast_array


def cast_model(src: int, dst: int, n: int, **attrs):
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=dst, **attrs)],
        "cast",
        [helper.make_tensor_value_info("x", src, [n])],
        [helper.make_tensor_value_info("y", dst, [n])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def probes(dtype: np.dtype) -> np.ndarray:
    """float32 values around every representable value of `dtype` (the value, its neighbours, the halfway
    points to the next one), beyond its range, signed zeros, infinities, NaN, and random values."""
    values = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float32)
    finite = np.unique(values[np.isfinite(values)])
    mids = (finite[:-1] + finite[1:]) / 2
    big = float(ml_dtypes.finfo(dtype).max)
    extra = [0.0, -0.0, np.inf, -np.inf, np.nan, big * 1.01, big * 1.2, -big * 1.5, 1e30, -1e-30, 1e-30]
    rng = np.random.default_rng(0)
    wild = rng.standard_normal(500).astype(np.float32) * np.float32(big) / 4
    out = np.concatenate([finite, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), extra, wild])
    return out.astype(np.float32)


def same(got: np.ndarray, want: np.ndarray) -> bool:
    g, w = got.astype(np.float32), want.astype(np.float32)
    return bool(np.all((g == w) & (np.signbit(g) == np.signbit(w)) | (np.isnan(g) & np.isnan(w))))


@pytest.mark.parametrize("dtype", FLOAT8, ids=lambda d: d.name)
def test_every_bit_pattern_widens_exactly(dtype, tmp_path):
    bits = np.arange(256, dtype=np.uint8).view(dtype.np)
    (got,) = run_mlcc(cast_model(dtype.onnx, TensorProto.FLOAT, 256), {"x": bits}, tmp_path)
    assert same(got, bits.astype(np.float32))


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
