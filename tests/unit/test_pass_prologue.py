"""Prologue fusion (compiler/passes/fuse.py fuse_prologues): an elementwise group read only by a reduction
runs inside it. Before/expected IR, which reductions take which groups, and onnxruntime's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import assert_close, build_c_strictly, run_mlcc, run_ort
from mlcc.importer.onnx import import_onnx
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.registry import infer_node
from mlcc.passes.fuse import fuse_elementwise, fuse_prologues

F = TensorProto.FLOAT


def model(nodes, inputs, inits=(), opset=18, out_type=F):
    graph = helper.make_graph(
        nodes, "prologue", inputs, [helper.make_tensor_value_info("y", out_type, None)], list(inits)
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def inp(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, list(shape))


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def node(op, ins, out, **attrs):
    return helper.make_node(op, ins, [out], **attrs)


def test_layer_norm_reads_its_residual_add_as_a_prologue():
    m = model(
        [node("Add", ["x", "r"], "s"), node("LayerNormalization", ["s", "g"], "y", axis=-1)],
        [inp("x", (2, 4)), inp("r", (4,))],
        [const("g", [1.0, 2.0, 3.0, 4.0])],
    )
    graph = fuse_prologues(fuse_elementwise(import_onnx(m, {})))
    verify(graph, infer_node)
    assert print_graph(graph) == (
        "graph(%x: float32[2,4], %r: float32[4]) -> (%y) {\n"
        "  %g: float32[4] = const [1.,2.,3.,4.]\n"
        "  %y: float32[2,4] = Fused(%x, %r, %g) {body=[{%s: float32[2,4] = Add(%x, %r)},"
        "{%y: float32[2,4] = LayerNormalization(%s, %g) {axis=-1}}]}\n"
        "}\n"
    )


# (nodes, inputs, initializers, fused?): the reduction reads the last elementwise value.
CASES = {
    # a norm's three passes over a cheap group; the [4] operand broadcast along the rows
    "layernorm_add": (
        [
            node("Add", ["x", "b"], "s"),
            node("Mul", ["s", "k"], "t"),
            node("LayerNormalization", ["t", "g", "bb"], "y", axis=-1),
        ],
        [inp("x", (3, 5, 4)), inp("b", (4,))],
        [const("k", 1.5), const("g", [1.0, -2.0, 0.5, 3.0]), const("bb", [0.1, 0.2, 0.3, 0.4])],
        True,
    ),
    # rows of 100: the statistics in 16 lanes plus a tail of 4 (ops/rownorm.py), gamma and beta per element
    "layernorm_lanes_tail": (
        [
            node("Sub", ["x", "b"], "s"),
            node("LayerNormalization", ["s", "g100", "b100"], "y", axis=-1, epsilon=1e-3),
        ],
        [inp("x", (3, 100)), inp("b", (100,))],
        [const("g100", np.linspace(0.5, 2, 100)), const("b100", np.linspace(-1, 1, 100))],
        True,
    ),
    # InstanceNorm over 10x10 planes (lanes and tail), per-channel scale and bias, a Relu prologue
    "instancenorm_lanes_relu": (
        [node("Relu", ["x"], "t"), node("InstanceNormalization", ["t", "sc", "bi"], "y", epsilon=1e-4)],
        [inp("x", (2, 3, 10, 10))],
        [const("sc", [1.0, 0.5, 2.0]), const("bi", [0.0, 1.0, -1.0])],
        True,
    ),
    # RMSNorm as exporters write it: mean of squares over the last axis, one pass
    "reducemean_square": (
        [node("Mul", ["x", "x"], "s"), node("ReduceMean", ["s", "ax"], "y", keepdims=1)],
        [inp("x", (3, 5, 4))],
        [const("ax", [-1], np.int64)],
        True,
    ),
    # attention scores: scale and an additive mask [3, 1, 4] broadcast over the middle axis
    "softmax_masked": (
        [node("Mul", ["x", "k"], "s"), node("Add", ["s", "mask"], "t"), node("Softmax", ["t"], "y", axis=-1)],
        [inp("x", (3, 5, 4)), inp("mask", (3, 1, 4))],
        [const("k", 0.125)],
        True,
    ),
    # rows of 77 and of 100: the vectorisable softmax (integer-order maximum, 16-lane sums, a tail)
    "softmax_lanes": (
        [node("Mul", ["x", "k"], "s"), node("Softmax", ["s"], "y", axis=-1)],
        [inp("x", (3, 4, 77))],
        [const("k", 3.0)],
        True,
    ),
    "logsoftmax_lanes": (
        [node("Add", ["x", "b"], "t"), node("LogSoftmax", ["t"], "y", axis=-1)],
        [inp("x", (5, 100)), inp("b", (100,))],
        [],
        True,
    ),
    # softmax over a middle axis (inner > 1) after a Sub with a [5, 1] operand
    "logsoftmax_middle_axis": (
        [node("Sub", ["x", "c"], "t"), node("LogSoftmax", ["t"], "y", axis=1)],
        [inp("x", (3, 5, 4)), inp("c", (5, 1))],
        [],
        True,
    ),
    # one pass: an expensive op is fine
    "globalmaxpool_sigmoid": (
        [node("Sigmoid", ["x"], "t"), node("GlobalMaxPool", ["t"], "y")],
        [inp("x", (2, 3, 5, 5))],
        [],
        True,
    ),
    "globalavgpool_relu_add": (
        [node("Add", ["x", "c"], "s"), node("Relu", ["s"], "t"), node("GlobalAveragePool", ["t"], "y")],
        [inp("x", (2, 3, 5, 5)), inp("c", (1, 3, 1, 1))],
        [],
        True,
    ),
    "globalavgpool_relu_add_13x13": (  # the 16-lane sums with a tail
        [node("Add", ["x", "c"], "s"), node("Relu", ["s"], "t"), node("GlobalAveragePool", ["t"], "y")],
        [inp("x", (1, 4, 13, 13)), inp("c", (1, 4, 1, 1))],
        [],
        True,
    ),
    "softmax_strided_mul": (  # the column-block form of a strided axis, reading through the prologue
        [node("Mul", ["x", "c"], "s"), node("Softmax", ["s"], "y", axis=1)],
        [inp("x", (2, 6, 40)), inp("c", (1, 6, 1))],
        [],
        True,
    ),
    "argmax_neg": (
        [node("Neg", ["x"], "t"), node("ArgMax", ["t"], "y", axis=1, keepdims=0)],
        [inp("x", (3, 5, 4))],
        [],
        True,
    ),
    "reducesum_int": (
        [node("Mul", ["x", "x2"], "t"), node("ReduceSum", ["t", "ax"], "y", keepdims=0)],
        [inp("x", (3, 5, 4), TensorProto.INT32), inp("x2", (3, 5, 4), TensorProto.INT32)],
        [const("ax", [0, 2], np.int64)],
        True,
    ),
    # two passes over x (the maximum first): an Exp would be computed twice, so it stays a kernel of its own
    "logsumexp_exp_stays": (
        [node("Exp", ["x"], "t"), node("ReduceLogSumExp", ["t", "ax"], "y", keepdims=1)],
        [inp("x", (3, 5, 4))],
        [const("ax", [1], np.int64)],
        False,
    ),
    "softmax_tanh_stays": (
        [node("Tanh", ["x"], "t"), node("Softmax", ["t"], "y", axis=-1)],
        [inp("x", (3, 5, 4))],
        [],
        False,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reductions_take_prologues_with_onnxruntimes_numbers(case, tmp_path):
    nodes, inputs, inits, fused = CASES[case]
    out_type = TensorProto.INT64 if nodes[-1].op_type == "ArgMax" else inputs[0].type.tensor_type.elem_type
    m = model(nodes, inputs, inits, out_type=out_type)
    rng = np.random.default_rng(7)
    feeds = {}
    for v in inputs:
        shape = [d.dim_value for d in v.type.tensor_type.shape.dim]
        if v.type.tensor_type.elem_type == TensorProto.INT32:
            feeds[v.name] = rng.integers(-9, 9, shape).astype(np.int32)
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(np.float32)
    report = mlcc.compile(m, out_dir=tmp_path / "out", build=False)
    unfused = mlcc.compile(m, out_dir=tmp_path / "o1", build=False, opt_level=1)
    assert report["kernels"] == (1 if fused else unfused["kernels"])
    source = build_c_strictly(m, tmp_path / "strict")
    assert ("_x(P0, " in source) == fused  # the reduction reads X through the prologue helper
    assert_close(run_mlcc(m, feeds, tmp_path / "run"), run_ort(m, feeds), rtol=1e-5, atol=1e-6)
