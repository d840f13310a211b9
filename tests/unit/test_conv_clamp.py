"""Channel-major packed convolutions whose epilogue is nothing but the bias, or one Relu or Clip: the micro-kernel
adds the bias and clamps in registers (ops/fused.py in_register_clamp, conv_packed.c.j2); so do pixel-major ones
(conv_pmajor.c.j2) and depthwise ones by vector rows (conv_dw.c.j2). The expected output is
the convolution alone (onnxruntime) followed by the activation in numpy, with NaN passing as in the ONNX
reference (np.maximum, np.clip): the input holds NaN and infinities, and every case takes whole and partial tiles.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc.passes.pack_weights as layout
from helpers import HOST_CPUS, assert_close, compile_and_load, run_ort

KC_MAX = 384  # deeper than any target's KC: at least two K blocks

SHAPES = {
    # (x shape, w shape, conv attrs)
    "im2col_3x3_s2": ((1, 5, 17, 19), (40, 5, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),  # 40: not phases
    "pointwise_in_place": ((2, 16, 9, 11), (24, 16, 1, 1), {}),  # whole strips of B read in place
    "pointwise_k_blocks": ((1, KC_MAX + 37, 7, 5), (11, KC_MAX + 37, 1, 1), {}),  # the last K block clamps
    # pixel-major, read in place (AVX-512; conv_pmajor.c.j2): the tile clamped before its transposed store, a
    # channel-blocked 3x3 on 13x13 (the last pixel on a tile of one row) and a 1x1 on 7x7 (tiles of 7, 40 of 64
    # channels: partial strips stored element by element)
    "pixel_3x3": ((2, 32, 13, 13), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}),
    "pixel_1x1": ((1, 136, 7, 7), (40, 136, 1, 1), {}),
    # depthwise by vector rows (8- and 16-float vectors; conv_dw.c.j2): the rows clamped before their store, rows
    # of 37 (a partial vector) one at a time, rows of 12 four (two) at a time with two left over, stride 2
    "depthwise_rows": ((1, 20, 11, 37), (20, 1, 3, 3), {"group": 20, "pads": [1, 1, 1, 1]}),
    "depthwise_rows_of_12": ((1, 6, 30, 12), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
    "depthwise_stride2": ((1, 8, 14, 41), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
}
PIXEL = {"pixel_3x3", "pixel_1x1"}
DEPTHWISE = {"depthwise_rows", "depthwise_rows_of_12", "depthwise_stride2"}
ACTS = {
    # name: (opset, nodes after the conv output "c" producing "y", initializers, numpy of the conv output)
    "relu": (17, [helper.make_node("Relu", ["c"], ["y"])], [], lambda c: np.maximum(c, 0)),
    "clip_0_6": (
        17,
        [helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
        [numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")],
        lambda c: np.clip(c, 0, 6),
    ),
    "clip_max_only": (
        17,
        [helper.make_node("Clip", ["c", "", "hi"], ["y"])],
        [numpy_helper.from_array(np.float32(0.5), "hi")],
        lambda c: np.where(c > 0.5, np.float32(0.5), c),
    ),
    "clip_opset6": (6, [helper.make_node("Clip", ["c"], ["y"], min=-1.0, max=1.0)], [], lambda c: np.clip(c, -1, 1)),
    "bias_only": (17, [helper.make_node("Identity", ["c"], ["y"])], [], lambda c: c),
}


def _model(x_shape, w_shape, attrs, act, bias=True, conv_only=False) -> onnx.ModelProto:
    opset, after, inits, _ = ACTS[act]
    rng = np.random.default_rng(sum(w_shape))
    inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32), "w"), *inits]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(w_shape[0]).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("Conv", inputs, ["y" if conv_only else "c"], **attrs)] + ([] if conv_only else after)
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [t for t in inits if t.name in used],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13 if conv_only else opset)])


@pytest.mark.parametrize("cpu", HOST_CPUS)
@pytest.mark.parametrize("act", sorted(ACTS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_bias_and_activation_in_registers_match_the_separate_ops(shape, act, cpu, tmp_path, monkeypatch):
    x_shape, w_shape, attrs = SHAPES[shape]
    bias = act != "relu"  # a Relu without a bias: the micro-kernel's bias pointer is NULL
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    x = np.random.default_rng(7).standard_normal(x_shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[[3, 50]] = np.nan
    flat[[11]] = np.inf
    flat[[40]] = -np.inf
    model = _model(x_shape, w_shape, attrs, act, bias)
    if shape in PIXEL:  # small pixel-major cases (as in test_pass_layout)
        monkeypatch.setattr(layout, "P_MAJOR_CHANNELS", 1)
        monkeypatch.setattr(layout, "P_MAJOR_DEPTH", 1)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        if shape in PIXEL:
            if cpu == "x86-64-v4":  # the tile clamped in registers; a bias alone needs no clamp
                assert re.search(r"mlcc_ukr_gather\d_clamp\(", source) or act == "bias_only"
                assert (shape == "pixel_3x3") == ("mlcc_ukr_gather1" in source)
        elif shape in DEPTHWISE:
            if cpu != "generic":
                assert "float ring[" in source
                assert ("_clamp(a0_0, lo, hi)" in source) == (act != "bias_only")
        else:
            assert "mlcc_ukr_packed_clamp(kc" in source
            if shape != "pointwise_k_blocks":  # B read in place (strided) for a 1x1, packed for the im2col case
                assert ("mlcc_ukr_strided_clamp(kc" in source) == (shape == "pointwise_in_place")
            assert "float tb[" not in source  # no pass over the tile
        got = compiled.run({"x": x})["y"]
    conv = run_ort(_model(x_shape, w_shape, attrs, act, bias, conv_only=True), {"x": x})[0]
    want = ACTS[act][3](conv).astype(np.float32)
    assert np.isnan(want).any() and np.isinf(conv).any()  # the cases reach NaN and infinities
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close([np.nan_to_num(got)], [np.nan_to_num(want)], rtol=1e-4, atol=1e-4)


def test_an_epilogue_beyond_a_clamp_keeps_the_pass_over_the_tile(tmp_path):
    """A LeakyRelu (not a clamp): the tile goes through tb and the epilogue's pass, as before."""
    x_shape, w_shape, attrs = SHAPES["im2col_3x3_s2"]
    model = _model(x_shape, w_shape, attrs, "relu")
    model.graph.node[1].op_type = "LeakyRelu"
    with compile_and_load(model, tmp_path, cpu="generic") as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "_clamp(kc" not in source and "float tb[" in source
        x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
        got = compiled.run({"x": x})["y"]
    assert_close([got], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)
