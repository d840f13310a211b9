"""The tiled GEMM / implicit-GEMM convolution engine on a GPU, at every precision, against references.

Tolerances per precision (documented in the README): max |got - ref| <= tol * max |ref|.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import run_ort

pytestmark = pytest.mark.gpu
TOLERANCE = {"fp32": 1e-5, "tf32": 5e-3, "fp16": 5e-3, "bf16": 3e-2}


def check(got: np.ndarray, want: np.ndarray, precision: str) -> None:
    err = np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30)
    assert err <= TOLERANCE[precision], f"{precision}: relative error {err:.2e} > {TOLERANCE[precision]}"


def run(model: onnx.ModelProto, feeds: dict, out, precision: str) -> list[np.ndarray]:
    mlcc.compile(model, target="cuda", out_dir=out, precision=precision)
    with mlcc.load(out) as m:
        result = m.run(feeds)
        return [result[t.name] for t in m.outputs]


def matmul_model(a_shape, b_shape, out_shape) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "mm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_case(a_shape, b_shape) -> tuple[onnx.ModelProto, dict, np.ndarray]:
    """MatMul of seeded operands: (model, feeds, float64 reference)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    return matmul_model(a_shape, b_shape, want.shape), {"a": a, "b": b}, want


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((512, 768), (768, 3072)), ((3, 1, 65, 130), (4, 130, 33)), ((1, 2048), (2048, 1000)), ((127,), (127, 5))],
)
def test_matmul(precision, a_shape, b_shape, tmp_path):
    model, feeds, want = matmul_case(a_shape, b_shape)
    (got,) = run(model, feeds, tmp_path, precision)
    check(got, want, precision)


def gemm_transposes_alpha_beta() -> tuple[onnx.ModelProto, dict, np.ndarray]:
    """Gemm with transA, transB, alpha, beta and a row bias: (model, feeds, float64 reference)."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 200)).astype(np.float32), rng.standard_normal((150, 300)).astype(np.float32)
    c = rng.standard_normal((150,)).astype(np.float32)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, a.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (200, 150))],
        [numpy_helper.from_array(b, "b"), numpy_helper.from_array(c, "c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model, {"a": a}, 0.5 * a.T.astype(np.float64) @ b.T + 2.0 * c


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
def test_gemm_transposes_alpha_beta(precision, tmp_path):
    model, feeds, want = gemm_transposes_alpha_beta()
    (got,) = run(model, feeds, tmp_path, precision)
    check(got, want, precision)


@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16"])
@pytest.mark.parametrize(
    "x_shape,w_shape,attrs",
    [
        ((2, 64, 28, 28), (128, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((1, 32, 17, 19), (64, 16, 3, 3), {"group": 2, "strides": [2, 2], "dilations": [2, 1], "pads": [2, 1, 0, 1]}),
        ((1, 256, 14, 14), (64, 256, 1, 1), {}),
        ((1, 3, 224, 224), (64, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
        ((2, 32, 9, 9), (32, 1, 3, 3), {"group": 32, "auto_pad": "SAME_UPPER"}),
        ((1, 8, 5, 6, 7), (16, 8, 3, 3, 3), {"pads": [1, 1, 1, 1, 1, 1]}),
    ],
)
def test_conv(precision, x_shape, w_shape, attrs, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    bias = rng.standard_normal(w_shape[0]).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "bias"], ["y"], **attrs)],
        "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (want,) = run_ort(model, {"x": x})
    (got,) = run(model, {"x": x}, tmp_path, precision)
    check(got, want.astype(np.float64), precision)


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize(
    "kind,a_shape,b_shape",
    [
        ("matmul", (64, 4100), (4100, 33)),  # one output tile: K split 29 ways, the last split short
        ("matmul", (3, 70, 900), (3, 900, 50)),  # batched, partial tiles in both dims
        ("conv", (1, 512, 7, 7), (64, 512, 3, 3)),  # ResNet-50's last stage: 49 pixels, K = 4608
    ],
)
def test_split_k_is_right_and_deterministic(precision, kind, a_shape, b_shape, tmp_path):
    """Shapes whose few output tiles make the engine split K (tile_gemm.cuh.j2): each split's partial tile is
    summed in split order by the tile's last block, so results match the reference and repeat bit for bit."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = (rng.standard_normal(b_shape) / np.sqrt(np.prod(b_shape[1:]))).astype(np.float32)
    if kind == "matmul":
        model = matmul_model(a_shape, b_shape, np.matmul(a, b).shape)
        feeds, want = {"a": a, "b": b}, np.matmul(a.astype(np.float64), b.astype(np.float64))
    else:
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
            "c",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, a_shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(b, "w")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        feeds = {"x": a}
        want = run_ort(model, feeds)[0].astype(np.float64)
    mlcc.compile(model, target="cuda", out_dir=tmp_path, precision=precision)
    assert "mlcc_split_last" in (tmp_path / "model.cu").read_text()
    with mlcc.load(tmp_path) as m:
        first = m.run(feeds)["y"]
        runs = [m.run(feeds)["y"] for _ in range(3)]
    check(first, want, precision)
    for again in runs:
        np.testing.assert_array_equal(again, first)
