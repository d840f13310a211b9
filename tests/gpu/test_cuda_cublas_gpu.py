"""`--gemm cublas` on a GPU: GEMM and convolution through cuBLAS (compiler/codegen/backends/cuda.py,
templates/cuda/kernels/cublas.cuh.j2) against onnxruntime and float64 references, at the precisions whose
tolerances test_cuda_gemm_conv.py documents, with CUDA graphs on and off."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_cuda_gemm_conv import check, gemm_transposes_alpha_beta, matmul_case

import mlcc
from helpers import run_ort

pytestmark = pytest.mark.gpu
PRECISIONS = ["fp32", "tf32", "fp16"]


def run(model: onnx.ModelProto, feeds: dict, out, precision: str, **options) -> list[np.ndarray]:
    mlcc.compile(model, target="cuda", out_dir=out, precision=precision, gemm="cublas", **options)
    assert "cublasGemmStridedBatchedEx" in (out / "model.cu").read_text()
    with mlcc.load(out) as m:
        result = m.run(feeds)
        return [result[t.name] for t in m.outputs]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((512, 768), (768, 3072)), ((6, 65, 130), (6, 130, 33)), ((2, 3, 65, 130), (130, 33)), ((1, 2048), (2048, 1000))],
)
def test_matmul(precision, a_shape, b_shape, tmp_path):
    model, feeds, want = matmul_case(a_shape, b_shape)
    (got,) = run(model, feeds, tmp_path, precision)
    check(got, want, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gemm_transposes_alpha_beta(precision, tmp_path):
    model, feeds, want = gemm_transposes_alpha_beta()
    (got,) = run(model, feeds, tmp_path, precision)
    check(got, want, precision)


CONVS = [
    # im2col, bias, image by image
    ((2, 64, 28, 28), (128, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
    # grouped, strided, dilated, asymmetric pads
    ((1, 32, 17, 19), (64, 16, 3, 3), {"group": 2, "strides": [2, 2], "dilations": [2, 1], "pads": [2, 1, 0, 1]}),
    # pointwise: X itself, batched over images
    ((2, 256, 14, 14), (64, 256, 1, 1), {}),
    # pointwise grouped: X itself, per image
    ((2, 64, 9, 9), (32, 16, 1, 1), {"group": 4}),
    # a stem
    ((1, 3, 224, 224), (64, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    # 3-D
    ((1, 8, 5, 6, 7), (16, 8, 3, 3, 3), {"pads": [1, 1, 1, 1, 1, 1]}),
]


def conv_model(x_shape, w_shape, attrs, bias: bool, residual_relu: bool, seed: int = 2) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(w_shape[0]).astype(np.float32), "bias"))
    nodes = [helper.make_node("Conv", ["x", "w"] + (["bias"] if bias else []), ["c"], **attrs)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    if residual_relu:  # an epilogue with an operand: the store kernel reads it
        nodes += [helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    else:
        nodes.append(helper.make_node("Identity", ["c"], ["y"]))
    graph = helper.make_graph(nodes, "c", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv(precision, case, tmp_path):
    x_shape, w_shape, attrs = CONVS[case]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    for bias, residual in ((True, False), (False, False), (True, True)):
        model = conv_model(x_shape, w_shape, attrs, bias, residual)
        feeds = {"x": x}
        if residual:
            (c,) = run_ort(conv_model(x_shape, w_shape, attrs, bias, False), feeds)
            feeds["r"] = rng.standard_normal(c.shape).astype(np.float32)
        (want,) = run_ort(model, feeds)
        out = tmp_path / f"b{int(bias)}r{int(residual)}"
        (got,) = run(model, feeds, out, precision)
        check(got, want.astype(np.float64), precision)


def test_graph_replay_equals_plain_launches(tmp_path):
    x_shape, w_shape, attrs = CONVS[0]
    model = conv_model(x_shape, w_shape, attrs, bias=True, residual_relu=False)
    feeds = {"x": np.random.default_rng(4).standard_normal(x_shape).astype(np.float32)}
    (graph,) = run(model, feeds, tmp_path / "g", "fp32")
    (plain,) = run(model, feeds, tmp_path / "n", "fp32", cuda_graph=False)
    np.testing.assert_array_equal(graph, plain)
