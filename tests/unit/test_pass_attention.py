"""Scaled-dot-product attention recognition (compiler/passes/attention.py) and its kernel
(compiler/ops/attention.py, templates/c/kernels/attention.c.j2): before/expected IR, the spellings that
match and those that must not, and onnxruntime's numbers on every --cpu this machine runs, 1 and 3 threads."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import HOST_CPUS, assert_close, compile_and_load, run_ort
from mlcc.cpu import cpu_target
from mlcc.importer.onnx import import_onnx
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.registry import infer_node
from mlcc.passes.attention import recognize_attention
from mlcc.passes.recognize import recognize

F = TensorProto.FLOAT
RUNS = [("generic", 1), ("generic", 3)] + [(cpu, 2) for cpu in HOST_CPUS[1:] + ["native"]]  # (--cpu, MLCC_NUM_THREADS)


def build(q, k, v, mask=None, scale="div_scores", mask_first=False, opset=17, extra_outputs=(), axis=-1):
    """softmax(scale(Q @ K^T) [+ mask]) @ V with K transposed by a Transpose node; `scale` says where the
    1/sqrt(d) goes: div_scores, mul_scores, mul_q (on Q before the MatMul), none."""
    rank = len(k)
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=list(range(rank - 2)) + [rank - 1, rank - 2])]
    inits = [numpy_helper.from_array(np.array(q[-1] ** 0.5, np.float32), "c")]
    a = "q"
    if scale == "mul_q":
        nodes.append(helper.make_node("Mul", ["q", "inv_c"], ["qs"]))
        inits.append(numpy_helper.from_array(np.array(q[-1] ** -0.5, np.float32), "inv_c"))
        a = "qs"
    nodes.append(helper.make_node("MatMul", [a, "kt"], ["s"]))
    s = "s"
    if scale == "div_scores":
        nodes.append(helper.make_node("Div", ["s", "c"], ["sc"]))
        s = "sc"
    elif scale == "mul_scores":
        nodes.append(helper.make_node("Mul", ["c2", "s"], ["sc"]))
        inits.append(numpy_helper.from_array(np.array(q[-1] ** -0.5, np.float32), "c2"))
        s = "sc"
    if mask is not None:
        nodes.append(helper.make_node("Add", ["mask", s] if mask_first else [s, "mask"], ["sm"]))
        s = "sm"
    nodes += [helper.make_node("Softmax", [s], ["p"], axis=axis), helper.make_node("MatMul", ["p", "v"], ["y"])]
    shapes = [("q", q), ("k", k), ("v", v)] + ([("mask", mask)] if mask is not None else [])
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info(n, F, s) for n, s in shapes],
        [helper.make_tensor_value_info(n, F, None) for n in ("y", *extra_outputs)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def recognized(model: onnx.ModelProto) -> list[str]:
    graph = recognize_attention(recognize(import_onnx(model, {})), cpu_target("generic"))
    verify(graph, infer_node)
    return [n.op for n in graph.nodes]


def feeds_for(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    feeds = {}
    for i in model.graph.input:
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if i.name == "mask":  # padding-style: 0 or -10000, at least one key attended per row
            feeds[i.name] = np.where(rng.random(shape) < 0.3, -10000.0, 0.0).astype(np.float32)
            feeds[i.name][..., 0] = 0.0
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def test_the_pattern_becomes_one_op():
    graph = recognize_attention(
        recognize(import_onnx(build([1, 2, 3, 4], [1, 2, 5, 4], [1, 2, 5, 6], mask=[1, 1, 1, 5]), {})),
        cpu_target("generic"),
    )
    assert print_graph(graph) == (
        "graph(%q: float32[1,2,3,4], %k: float32[1,2,5,4], %v: float32[1,2,5,6], %mask: float32[1,1,1,5])"
        " -> (%y) {\n"
        "  %kt: float32[1,2,4,5] = Transpose(%k) {perm=[0,1,3,2]}\n"
        "  %y: float32[1,2,3,6] = ScaledDotProductAttention(%q, %kt, %v, %mask) {mr=6, nr=8, scale=0.5}\n"
        "}\n"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": "mul_scores", "mask": [2, 1, 5, 7]},
        {"scale": "mul_q", "mask": [1, 7], "mask_first": True},
        {"scale": "none"},
        {"scale": "div_scores", "opset": 11, "axis": 3},  # old Softmax: the last axis given explicitly
    ],
    ids=["mul_scores", "mul_q_mask_first", "unscaled", "opset11"],
)
def test_spellings_that_match(kwargs):
    assert recognized(build([2, 3, 5, 4], [2, 3, 7, 4], [2, 3, 7, 6], **kwargs)) == [
        "Transpose",
        "ScaledDotProductAttention",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extra_outputs": ("p",)},  # the probabilities are a graph output
        {"extra_outputs": ("s",)},  # so are the raw scores
        {"axis": 2},  # softmax over the queries, not the keys
    ],
    ids=["probs_output", "scores_output", "softmax_axis"],
)
def test_what_must_not_match(kwargs):
    assert "ScaledDotProductAttention" not in recognized(build([2, 3, 5, 4], [2, 3, 5, 4], [2, 3, 5, 6], **kwargs))


SHAPES = {
    # name: (q, k, v, mask); partial panels and strips, D deeper than KC, broadcast batch, 2-D, mask that
    # widens the batch, a causal [Sq, Skv] mask
    "heads": ([1, 3, 20, 16], [1, 3, 37, 16], [1, 3, 37, 24], [1, 1, 1, 37]),
    "deep_head": ([2, 9, 400], [2, 40, 400], [2, 40, 5], [2, 1, 40]),
    "broadcast_batch": ([2, 3, 7, 8], [1, 3, 11, 8], [3, 11, 70], [2, 1, 7, 11]),
    "plain_2d": ([33, 12], [65, 12], [65, 9], None),
    "mask_widens_batch": ([3, 6, 8], [3, 6, 8], [3, 6, 8], [2, 1, 6, 6]),
    "causal": ([1, 2, 17, 32], [1, 2, 17, 32], [1, 2, 17, 32], [17, 17]),
}


@pytest.mark.parametrize(("cpu", "threads"), RUNS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_attention_kernel_matches_onnxruntime(name, cpu, threads, tmp_path, monkeypatch):
    q, k, v, mask = SHAPES[name]
    model = build(q, k, v, mask=mask)
    feeds = feeds_for(model)
    if name == "causal":
        feeds["mask"] = np.triu(np.full((17, 17), -np.inf, np.float32), 1)
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "_attention(" in source and "mlcc_pack_b(KT," in source
        got = compiled.run(feeds)["y"]
    assert_close([got], run_ort(model, feeds), rtol=1e-4, atol=1e-5)


def test_fewer_kernels_and_the_pass_can_be_disabled(tmp_path):
    model = build([1, 4, 24, 16], [1, 4, 24, 16], [1, 4, 24, 16], mask=[1, 1, 1, 24])
    fused = mlcc.compile(model, out_dir=tmp_path / "on", build=False)
    unfused = mlcc.compile(model, out_dir=tmp_path / "off", build=False, disable_passes=["recognize_attention"])
    assert fused["kernels"] == 2  # the Transpose of K, the attention
    assert unfused["kernels"] == 4  # Transpose, Q @ K^T with its scale and mask, Softmax, P @ V
    assert fused["arena_bytes"] < unfused["arena_bytes"]  # the [4, 24, 24] scores are never stored
    with pytest.raises(mlcc.MlccError, match="no such pass"):
        mlcc.compile(model, out_dir=tmp_path / "bad", build=False, disable_passes=["recognise_attention"])
    with pytest.raises(mlcc.MlccError, match="mandatory"):
        mlcc.compile(model, out_dir=tmp_path / "bad2", build=False, disable_passes=["fold_constants"])
