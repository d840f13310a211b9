"""`--gemm cublas` without a GPU: which kernels go to cuBLAS and how (compiler/codegen/backends/cuda.py), and
the generated CUDA compiles and links against cuBLAS with warnings as errors (the Makefile's venv installs
pip's nvidia-cublas where nvcc is present). tests/gpu/test_cuda_cublas_gpu.py runs it against onnxruntime."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import NEEDS_NVCC, NVCC_STRICT
from mlcc.codegen import toolchain
from mlcc.codegen.backends.cuda import _cublas_gemm
from mlcc.errors import MlccError


def gemm_params(m, n, k, a_strides, b_strides, dims=(), y=(), a=(), b=()) -> dict:
    return {
        "M": m,
        "N": n,
        "K": k,
        "a_rs": a_strides[0],
        "a_cs": a_strides[1],
        "b_rs": b_strides[0],
        "b_cs": b_strides[1],
        "batch_dims": list(dims),
        "y_batch": list(y),
        "a_batch": list(a),
        "b_batch": list(b),
    }


def test_the_column_major_view_of_each_gemm_operand():
    """Row-major Y = A B as column-major Y^T = B^T A^T: an operand with contiguous rows is op N with its row
    stride as leading dimension, one with contiguous columns op T; batch dims are one strided batch."""
    plain = _cublas_gemm(gemm_params(5, 7, 3, (3, 1), (7, 1)))
    assert plain == {
        "op_a": "CUBLAS_OP_N",
        "op_b": "CUBLAS_OP_N",
        "lda": 3,
        "ldb": 7,
        "stride_a": 0,
        "stride_b": 0,
        "batch": 1,
    }
    transposed = _cublas_gemm(gemm_params(5, 7, 3, (1, 5), (1, 3)))  # Gemm transA, transB
    assert (transposed["op_a"], transposed["lda"], transposed["op_b"], transposed["ldb"]) == (
        "CUBLAS_OP_T",
        5,
        "CUBLAS_OP_T",
        3,
    )
    # [3, 4] batches of A, B broadcast over them: one batch of 12, B's stride 0
    batched = _cublas_gemm(gemm_params(5, 7, 3, (3, 1), (7, 1), (3, 4), (140, 35), (60, 15), (0, 0)))
    assert (batched["batch"], batched["stride_a"], batched["stride_b"]) == (12, 15, 0)
    # B broadcast over the first batch dim only: not one arithmetic sequence, the own engine takes it
    assert _cublas_gemm(gemm_params(5, 7, 3, (3, 1), (7, 1), (3, 4), (140, 35), (60, 15), (0, 21))) is None
    assert _cublas_gemm(gemm_params(5, 7, 3, (0, 1), (7, 1))) is None  # A's rows broadcast: no leading dimension
    one_row = _cublas_gemm(gemm_params(1, 1000, 2048, (0, 1), (1000, 1)))  # a classifier at batch 1
    assert one_row["lda"] == 2048


def conv(x_shape, w_shape, bias=True, epilogue=False, **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32), "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(w_shape[0]).astype(np.float32), "b"))
    nodes = [helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["c" if epilogue else "y"], **attrs)]
    if epilogue:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def gemm(a_shape, b_shape, **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    n = b_shape[0] if attrs.get("transB") else b_shape[1]
    inits = [
        numpy_helper.from_array(rng.standard_normal(b_shape).astype(np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "c"),
    ]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], **attrs)],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def batched_matmul(a_shape, b_shape) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "mm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


CASES = {
    # name: (model, calls of cuBLAS in the source, im2col kernels, store kernels)
    "conv3x3_bias_relu": (conv((2, 16, 12, 12), (32, 16, 3, 3), epilogue=True, pads=[1, 1, 1, 1]), 1, 1, 1),
    "pointwise_direct": (conv((2, 64, 9, 9), (32, 64, 1, 1), bias=False), 1, 0, 0),
    "pointwise_grouped": (conv((2, 64, 9, 9), (32, 16, 1, 1), group=4), 1, 0, 1),
    "grouped_strided": (conv((1, 32, 17, 19), (64, 16, 3, 3), group=2, strides=[2, 2], pads=[1, 1, 1, 1]), 1, 1, 1),
    "gemm_trans_alpha_beta": (gemm((30, 20), (15, 30), transA=1, transB=1, alpha=0.5, beta=2.0), 1, 0, 1),
    "batched_matmul": (batched_matmul([6, 65, 130], [6, 130, 33]), 1, 0, 0),
    # A's batch dims over B's, B's over A's: no one batch stride each, the own engine takes it
    "matmul_crossed_batches": (batched_matmul([3, 1, 65, 130], [4, 130, 33]), 0, 0, 0),
    # depthwise (8 or fewer channels per group): the own direct kernel, no cuBLAS
    "depthwise": (conv((1, 32, 9, 9), (32, 1, 3, 3), group=32, pads=[1, 1, 1, 1]), 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_what_goes_to_cublas(name, tmp_path):
    model, calls, im2col, stores = CASES[name]
    mlcc.compile(model, target="cuda", gemm="cublas", out_dir=tmp_path, build=False)
    source = (tmp_path / "model.cu").read_text()
    assert source.count("cublasGemmStridedBatchedEx(") == calls
    assert len(re.findall(r"__global__ void __launch_bounds__\(256\) \w+_im2col\(", source)) == im2col
    assert len(re.findall(r"__global__ void __launch_bounds__\(256\) \w+_store\(", source)) == stores
    assert ("#include <cublas_v2.h>" in source) == (calls > 0)
    assert ("-lcublas" in (tmp_path / "Makefile").read_text()) == (calls > 0)


def cublas_variables() -> dict[str, str]:
    try:
        return toolchain.cublas_variables()
    except MlccError:
        pytest.skip("no cuBLAS (CUDA toolkit or pip's nvidia-cublas; `make venv` installs it where nvcc is)")


@NEEDS_NVCC
@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16", "bf16"])
def test_cublas_builds_compile_and_link_cleanly(precision, tmp_path):
    """Every path (im2col, pointwise batched and per image, store kernels with epilogues, direct, batched and
    transposed GEMMs) in one model per case, nvcc -Werror for sm_90, then linked into libmodel.so."""
    variables = [f"{k}={v}" for k, v in cublas_variables().items()]
    for name, (model, calls, _, _) in CASES.items():
        if not calls:
            continue
        out = tmp_path / name
        mlcc.compile(model, target="cuda", gemm="cublas", precision=precision, out_dir=out, build=False)
        proc = subprocess.run(
            ["make", "-s", "-C", str(out), f"NVCCFLAGS={NVCC_STRICT}", "CUDA_ARCH=-arch=sm_90", *variables],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (out / "libmodel.so").is_file()


@NEEDS_NVCC
def test_mlcc_builds_a_cublas_model_itself(tmp_path):
    """mlcc.compile finds cuBLAS (toolkit or pip package) and links it; the library names it as needed."""
    cublas_variables()
    mlcc.compile(
        conv((1, 16, 12, 12), (32, 16, 3, 3), pads=[1, 1, 1, 1]), target="cuda", gemm="cublas", out_dir=tmp_path
    )
    dynamic = subprocess.run(["readelf", "-d", str(tmp_path / "libmodel.so")], capture_output=True, text=True)
    assert "libcublas.so" in dynamic.stdout


def test_no_cublas_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CUBLAS_INCLUDE", raising=False)
    monkeypatch.delenv("CUBLAS_LIBS", raising=False)
    monkeypatch.setenv("NVCC", "/nonexistent/nvcc")
    monkeypatch.setattr(toolchain.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MlccError, match="cuBLAS was not found"):
        toolchain.cublas_variables()
    monkeypatch.setenv("CUBLAS_LIBS", "-lcublas")  # the user's own: used as given
    assert toolchain.cublas_variables() == {}


def test_gemm_cublas_needs_the_cuda_target(tmp_path):
    with pytest.raises(MlccError, match="applies to --target cuda"):
        mlcc.compile(conv((1, 4, 5, 5), (4, 4, 3, 3)), gemm="cublas", out_dir=tmp_path, build=False)
