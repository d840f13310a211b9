"""Elementwise fusion (compiler/passes/fuse.py, compiler/ops/fused.py): before/expected IR, the cases that
must not fuse, the same numbers as onnxruntime, and one kernel where there were several."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import assert_close, build_c_strictly, run_mlcc, run_ort
from mlcc.importer.onnx import import_onnx
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.registry import infer_node
from mlcc.passes.fuse import fuse_elementwise

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(
        nodes, "fuse", inputs, [helper.make_tensor_value_info(o, F, None) for o in outputs], list(inits)
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def x(name="x", shape=(2, 3, 4)):
    return helper.make_tensor_value_info(name, F, list(shape))


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def fused_ir(m: onnx.ModelProto) -> str:
    graph = fuse_elementwise(import_onnx(m, {}))
    verify(graph, infer_node)
    return print_graph(graph)


SWISH_CLIP = model(  # x * tanh(x), which canonicalisation does not turn into one op
    [
        helper.make_node("Add", ["x", "b"], ["a"]),
        helper.make_node("Tanh", ["a"], ["s"]),
        helper.make_node("Mul", ["a", "s"], ["m"]),
        helper.make_node("Clip", ["m", "lo", "hi"], ["y"]),
    ],
    [x()],
    ["y"],
    [const("b", np.arange(4)), const("lo", 0.1), const("hi", 2.5)],
)


def test_a_chain_with_a_shared_intermediate_becomes_one_fused_node():
    assert fused_ir(SWISH_CLIP) == (
        "graph(%x: float32[2,3,4]) -> (%y) {\n"
        "  %b: float32[4] = const [0.,1.,2.,3.]\n"
        "  %lo: float32[] = const [0.1]\n"
        "  %hi: float32[] = const [2.5]\n"
        "  %y: float32[2,3,4] = Fused(%x, %b, %lo, %hi) {body=[{%a: float32[2,3,4] = Add(%x, %b)},"
        "{%s: float32[2,3,4] = Tanh(%a)},{%m: float32[2,3,4] = Mul(%a, %s)},{%y: float32[2,3,4] = Clip(%m, %lo, %hi)}]}\n"
        "}\n"
    )


def test_what_must_not_fuse():
    m = model(
        [
            helper.make_node("Relu", ["x"], ["r"]),  # a graph output: stays a value of its own
            helper.make_node("Neg", ["r"], ["n"]),
            helper.make_node("Exp", ["v"], ["e"]),  # [4] read broadcast into [2,3,4]: not element for element
            helper.make_node("Add", ["n", "e"], ["s"]),
            helper.make_node("Abs", ["s"], ["u"]),  # read by Abs and by Softmax (not elementwise)
            helper.make_node("Softmax", ["u"], ["sm"]),
            helper.make_node("Sqrt", ["u"], ["y"]),
        ],
        [x(), x("v", (4,))],
        ["r", "sm", "y"],
    )
    ir = fused_ir(m)
    assert "%r: float32[2,3,4] = Relu(%x)\n" in ir
    assert "%e: float32[4] = Exp(%v)\n" in ir
    assert "%u: float32[2,3,4] = Fused(%r, %e) {body=[{%n: float32[2,3,4] = Neg(%r)}," in ir
    assert "%sm: float32[2,3,4] = Softmax(%u)" in ir and "%y: float32[2,3,4] = Sqrt(%u)" in ir


@pytest.mark.parametrize("opt", [0, 2])
def test_fused_and_unfused_give_onnxruntimes_numbers(opt, tmp_path):
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)}
    got = run_mlcc(SWISH_CLIP, feeds, tmp_path / "out", opt_level=opt)
    assert_close(got, run_ort(SWISH_CLIP, feeds), rtol=1e-6, atol=1e-7)
    source = (tmp_path / "out" / "model.c").read_text()
    assert ("fused_add_tanh_2more" in source) == (opt == 2)


def test_mixed_types_round_each_intermediate_like_separate_kernels(tmp_path):
    m = model(
        [
            helper.make_node("Mul", ["x", "k"], ["a"]),
            helper.make_node("Cast", ["a"], ["i"], to=TensorProto.INT32),  # truncation inside the fused kernel
            helper.make_node("Cast", ["i"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["a", "f"], ["y"]),
        ],
        [x()],
        ["y"],
        [const("k", 7.3)],
    )
    assert "Fused" in fused_ir(m)
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)}
    assert_close(run_mlcc(m, feeds, tmp_path / "out"), run_ort(m, feeds), rtol=0, atol=0)


def resnet_block():
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.1, "w"),
        *(const(n, rng.uniform(0.5, 1.5, 8)) for n in ("b", "mean", "var")),
    ]
    return model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["bn"]),
            helper.make_node("Add", ["bn", "x"], ["sum"]),
            helper.make_node("Relu", ["sum"], ["y"]),
        ],
        [x("x", (2, 8, 6, 6)), x("s", (8,))],  # a run-time scale: BatchNormalization stays (no weight folding)
        ["y"],
        inits,
    )


def test_conv_takes_its_elementwise_group_as_an_epilogue(tmp_path):
    m = resnet_block()
    rng = np.random.default_rng(4)
    feeds = {
        "x": rng.standard_normal((2, 8, 6, 6)).astype(np.float32),
        "s": rng.uniform(0.5, 1.5, 8).astype(np.float32),
    }
    report = mlcc.compile(m, out_dir=tmp_path / "out", build=False)
    # conv + batchnorm + residual add + relu in one kernel, after the pad of the direct convolution's input
    assert report["kernels"] == 2 and report["nodes_in"] == 4
    source = build_c_strictly(m, tmp_path / "strict")
    assert "fused_conv_batchnormalization_2more" in source and "E0[(r % 8)]" in source  # per-channel params
    assert_close(run_mlcc(m, feeds, tmp_path / "run"), run_ort(m, feeds), rtol=1e-5, atol=1e-5)
    cuda = mlcc.compile(m, target="cuda", out_dir=tmp_path / "cuda", build=False)
    assert cuda["kernels"] == 1  # the cuda conv takes the same epilogue in its store (no input pad kernel)
    cu = (tmp_path / "cuda" / "model.cu").read_text()
    assert "fused_conv_batchnormalization_2more" in cu and "E0[(r % 8)]" in cu
    if shutil.which("nvcc"):  # (on a GPU: tests/gpu runs the light models, whose convs take epilogues)
        flags = "NVCCFLAGS=-O3 -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror"
        make = ["make", "-s", "-C", str(tmp_path / "cuda"), "model.o", flags, "CUDA_ARCH=-arch=sm_90"]
        proc = subprocess.run(make, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "host",
    [
        helper.make_node("MatMul", ["a", "w"], ["h"]),
        helper.make_node("Gemm", ["a2", "w", "c"], ["h"], alpha=0.5, beta=2.0),
    ],
    ids=["matmul_batched", "gemm"],
)
def test_gemm_family_takes_bias_activation_and_per_row_operands(host, tmp_path):
    rng = np.random.default_rng(5)
    batched = host.op_type == "MatMul"
    a = x("a", (3, 4, 5)) if batched else x("a2", (4, 5))
    shape = (3, 4, 6) if batched else (4, 6)
    m = model(
        [
            host,
            helper.make_node("Add", ["h", "bias"], ["hb"]),  # broadcast along each row
            helper.make_node("Mul", ["hb", "rowscale"], ["hs"]),  # one value per row
            helper.make_node("Tanh", ["hs"], ["y"]),
        ],
        [a, x("bias", (6,)), x("rowscale", (4, 1))],  # run-time: canonicalisation cannot fold them into B/C
        ["y"],
        [const("w", rng.standard_normal((5, 6))), const("c", rng.standard_normal((1, 6)))],
    )
    feeds = {
        a.name: rng.standard_normal(shape[:-1] + (5,)).astype(np.float32),
        "bias": rng.standard_normal(6).astype(np.float32),
        "rowscale": rng.standard_normal((4, 1)).astype(np.float32),
    }
    report = mlcc.compile(m, out_dir=tmp_path / "out", build=False)
    assert report["kernels"] == 1
    assert ("E1[(r % 4)]" if batched else "E1[r]") in build_c_strictly(m, tmp_path / "strict")
    assert_close(run_mlcc(m, feeds, tmp_path / "run"), run_ort(m, feeds), rtol=1e-5, atol=1e-6)


def test_an_operand_not_addressable_per_run_keeps_the_host_separate(tmp_path):
    """A [1, 6] operand broadcast along the rows of a [4, 6] conv-free MatMul is fine; one indexed along
    the row axis but broadcast along an inner one ([4, 1, 6] into [4, 3, 6] rows of a batched MatMul, read
    per row *and* per column) cannot be read from (r, j) in general: checked by the pass, not assumed."""
    rng = np.random.default_rng(6)
    m = model(
        [helper.make_node("MatMul", ["a", "w"], ["h"]), helper.make_node("Add", ["h", "t"], ["y"])],
        [x("a", (4, 3, 5))],
        ["y"],
        [const("w", rng.standard_normal((5, 6))), const("t", rng.standard_normal((4, 1, 6)))],
    )
    feeds = {"a": rng.standard_normal((4, 3, 5)).astype(np.float32)}
    report = mlcc.compile(m, out_dir=tmp_path / "out", build=False)
    assert report["kernels"] == 2
    assert_close(run_mlcc(m, feeds, tmp_path / "run"), run_ort(m, feeds), rtol=1e-5, atol=1e-6)
