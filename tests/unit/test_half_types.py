"""float16 and bfloat16: bit-exact conversions in the C runtime, the legalisation pass as before/expected IR,
and whole models in both types against onnxruntime running the same model in float32."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import half_model, run_mlcc, run_ort
from mlcc.importer.onnx import import_onnx
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.registry import infer_node
from mlcc.passes.legalize_types import legalize_types

RUNTIME = Path(__file__).parents[2] / "runtime_c"
DRIVER = r"""
#include <stdio.h>
#include "mlcc_convert.h"
int main(void) {
  unsigned long long b;
  while (scanf("%llx", &b) == 1) {
    double x;
    memcpy(&x, &b, 8);
    uint16_t h = mlcc_to_f16(x), g = mlcc_to_bf16(x);
    float fh = mlcc_f16_to_f32(h), fg = mlcc_bf16_to_f32(g);
    uint32_t bh, bg;
    memcpy(&bh, &fh, 4);
    memcpy(&bg, &fg, 4);
    printf("%04x %04x %08x %08x\n", h, g, bh, bg);
  }
  return 0;
}
"""


def _values() -> np.ndarray:
    """Random magnitudes over the whole range, random bit patterns, specials, every float16 and every
    midpoint between neighbouring float16s (the ties that round-half-to-even decides)."""
    rng = np.random.default_rng(0)
    every = np.arange(0, 0x7C01, dtype=np.uint16).view(np.float16).astype(np.float64)
    mids = (every[:-1] + every[1:]) / 2
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.99, 65520, 1e-8, 2.98e-8, 3.4e38, 3.3961e38, -1e-45]
    return np.concatenate(
        [
            rng.standard_normal(20000) * np.exp(rng.uniform(-100, 100, 20000)),
            rng.integers(-(2**63), 2**63 - 1, 20000).view(np.float64),
            np.array(specials),
            every,
            mids,
            -mids,
        ]
    )


def test_conversions_match_numpy_and_ml_dtypes_bit_for_bit(tmp_path):
    exe = tmp_path / "convert"
    (tmp_path / "convert.c").write_text(DRIVER)
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
    subprocess.run(["gcc", *flags, f"-I{RUNTIME}", str(tmp_path / "convert.c"), "-o", str(exe), "-lm"], check=True)
    xs = _values()
    text = "\n".join(format(int(b), "x") for b in xs.view(np.uint64))
    rows = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout.split()
    got = np.array([int(t, 16) for t in rows], dtype=np.uint32).reshape(-1, 4)
    with np.errstate(all="ignore"):
        f16, bf16 = xs.astype(np.float16), xs.astype(ml_dtypes.bfloat16)
    nan = np.isnan(xs)
    assert np.array_equal(got[~nan, 0], f16.view(np.uint16)[~nan])
    assert np.array_equal(got[~nan, 1], bf16.view(np.uint16)[~nan])
    assert np.isnan(got[nan, 0].astype(np.uint16).view(np.float16)).all()
    assert np.isnan(got[nan, 1].astype(np.uint16).view(ml_dtypes.bfloat16)).all()
    assert np.array_equal(got[~nan, 2].view(np.float32), f16[~nan].astype(np.float32))
    assert np.array_equal(got[~nan, 3].view(np.float32), bf16[~nan].astype(np.float32))


def test_legalize_computes_in_float32_and_leaves_data_movement_alone():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)
    c = numpy_helper.from_array(np.ones((2, 3), np.float16), "c")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("Transpose", ["t"], ["u"], perm=[1, 0]),
        helper.make_node("Add", ["u", "c"], ["s"]),
        helper.make_node("Mul", ["s", "u"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "t", [x], [y], [c])
    graph = legalize_types(import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])))
    verify(graph, infer_node)
    assert print_graph(graph) == (
        "graph(%x: float16[2,3]) -> (%y) {\n"
        "  %c:f32: float32[2,3] = const [1.,1.,1.,1.,1.,1.]\n"
        "  %t: float16[3,2] = Transpose(%x) {perm=[1,0]}\n"
        "  %u: float16[2,3] = Transpose(%t) {perm=[1,0]}\n"
        "  %u:f32: float32[2,3] = Cast(%u) {to=1}\n"
        "  %s:f32: float32[2,3] = Add(%u:f32, %c:f32)\n"
        "  %s: float16[2,3] = Cast(%s:f32) {to=10}\n"  # every node's result is rounded, as in float16
        "  %s:f32.1: float32[2,3] = Cast(%s) {to=1}\n"
        "  %y:f32: float32[2,3] = Mul(%s:f32.1, %u:f32)\n"
        "  %y: float16[2,3] = Cast(%y:f32) {to=10}\n"
        "}\n"
    )


@pytest.mark.parametrize(
    "elem, np_type, rtol", [(TensorProto.FLOAT16, np.float16, 4e-3), (TensorProto.BFLOAT16, ml_dtypes.bfloat16, 3e-2)]
)
def test_half_model_matches_onnxruntime_in_float32(elem, np_type, rtol, tmp_path):
    x = np.random.default_rng(4).standard_normal((1, 2, 4, 4)).astype(np_type)
    got = run_mlcc(half_model(elem), {"x": x}, tmp_path / "out")
    assert [g.dtype for g in got] == [np.dtype(np_type)] * 2
    # The reference: the same model in float32 on the same (exactly widened) inputs and weights.
    want = run_ort(half_model(TensorProto.FLOAT), {"x": x.astype(np.float32)})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float32), w, rtol=rtol, atol=rtol * np.abs(w).max())
