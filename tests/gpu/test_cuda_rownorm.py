"""Row normalisations on a GPU against onnxruntime: rows of 64 or more elements run a block per row with warp-
shuffle sums (templates/cuda/kernels/rownorm.cu.j2), shorter rows a thread per row; both, with the statistics
outputs, at rows that do not fill a block."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import assert_close, run_ort

pytestmark = pytest.mark.gpu


def norm_model(op: str, x_shape, params: dict, attrs: dict, n_out: int = 1, opset: int = 18) -> onnx.ModelProto:
    names = ["y", "mean", "inv_std"][:n_out]
    graph = helper.make_graph(
        [helper.make_node(op, ["x", *params], names, **attrs)],
        "norm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names],
        [numpy_helper.from_array(v, k) for k, v in params.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


CASES = {
    # name: (op, x shape, parameter shapes, attributes, outputs)
    "layernorm_384": ("LayerNormalization", (2, 37, 384), {"g": (384,), "b": (384,)}, {"epsilon": 1e-12}, 3),
    "layernorm_2d_1500": ("LayerNormalization", (5, 3, 500), {"g": (3, 500), "b": (3, 500)}, {"axis": 1}, 3),
    "layernorm_short_40": ("LayerNormalization", (300, 40), {"g": (40,)}, {}, 1),
    "rmsnorm_1024": ("RMSNormalization", (4, 1024), {"g": (1024,)}, {"epsilon": 1e-6}, 1),
    "instancenorm_56x56": ("InstanceNormalization", (2, 5, 56, 56), {"s": (5,), "b": (5,)}, {}, 1),
    "groupnorm_8_groups": ("GroupNormalization", (2, 32, 9, 9), {"s": (32,), "b": (32,)}, {"num_groups": 8}, 1),
    "lpnorm_l1_axis1": ("LpNormalization", (3, 300, 7), {}, {"axis": 1, "p": 1}, 1),
    "lpnorm_l2_last": ("LpNormalization", (64, 2048), {}, {"axis": -1, "p": 2}, 1),
}


OPSET = {"GroupNormalization": 21, "RMSNormalization": 23}  # the first opsets with these ops' current forms


@pytest.mark.parametrize("name", sorted(CASES))
def test_row_normalisation_matches_onnxruntime(name, tmp_path):
    op, x_shape, shapes, attrs, n_out = CASES[name]
    rng = np.random.default_rng(4)
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    model = norm_model(op, x_shape, params, attrs, n_out, OPSET.get(op, 18))
    x = (3 + 2 * rng.standard_normal(x_shape)).astype(np.float32)  # an offset mean, as activations have
    want = run_ort(model, {"x": x})
    mlcc.compile(model, target="cuda", out_dir=tmp_path)
    with mlcc.load(tmp_path) as m:
        result = m.run({"x": x})
        got = [result[t.name] for t in m.outputs]
    assert_close(got, want, rtol=1e-4, atol=1e-5)
