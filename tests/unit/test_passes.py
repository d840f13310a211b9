"""Passes as before/expected IR: constant folding, dead-code elimination, memory planning."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlcc.importer.onnx import import_onnx
from mlcc.ir.dtypes import FLOAT32
from mlcc.ir.graph import Value
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.registry import infer_node
from mlcc.passes.dce import eliminate_dead_code
from mlcc.passes.fold import fold_constants
from mlcc.passes.memory_plan import plan_memory


def model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def shape_chain() -> onnx.ModelProto:
    """Shape -> Gather -> Concat -> Reshape, plus a dead branch."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
        helper.make_node("Exp", ["x"], ["dead"]),
    ]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "zero1"))
    return model(nodes, [x], [y], inits)


def test_fold_turns_a_shape_computation_into_a_constant():
    graph = import_onnx(shape_chain())
    graph = eliminate_dead_code(fold_constants(graph))
    verify(graph, infer_node)
    assert print_graph(graph) == (
        "graph(%x: float32[2,3,4]) -> (%y) {\n"
        "  %target: int64[2] = const [ 2,-1]\n"
        "  %r: float32[2,12] = Reshape(%x, %target)\n"
        "  %y: float32[2,12] = Relu(%r)\n"
        "}\n"
    )


def test_dce_keeps_everything_that_reaches_an_output():
    graph = import_onnx(shape_chain())
    before = len(graph.nodes)
    graph = eliminate_dead_code(graph)
    assert [n.op for n in graph.nodes] == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Relu"]
    assert before == 7


def test_fold_respects_the_size_cap():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    big = helper.make_node(
        "ConstantOfShape", ["shape"], ["c"], value=numpy_helper.from_array(np.array([2.0], np.float32))
    )
    nodes = [big, helper.make_node("Add", ["x", "c"], ["y"])]
    m = model(nodes, [x], [y], [numpy_helper.from_array(np.array([4], np.int64), "shape")])
    kept = fold_constants(import_onnx(m), limit_bytes=8)
    assert [n.op for n in kept.nodes] == ["ConstantOfShape", "Add"]
    folded = fold_constants(import_onnx(m))
    assert [n.op for n in folded.nodes] == ["Add"]


def _v(n: int) -> Value:
    return Value(f"v{n}", FLOAT32, (n,))


def test_memory_plan_reuses_dead_buffers_and_reports_bounds():
    a, b, c, d = (
        Value("a", FLOAT32, (256,)),
        Value("b", FLOAT32, (256,)),
        Value("c", FLOAT32, (256,)),
        Value("d", FLOAT32, (16,)),
    )
    steps = [([], [a]), ([a], [b]), ([b], [c]), ([c], [d])]  # a chain: two buffers suffice
    plan = plan_memory(steps, pinned=set())
    assert plan.naive_bytes == 3 * 1024 + 64
    assert plan.arena_bytes == plan.lower_bound_bytes == 2 * 1024
    assert plan.offsets[id(a)] != plan.offsets[id(b)]
    assert plan.offsets[id(a)] == plan.offsets[id(c)]


def test_memory_plan_never_overlaps_live_tensors():
    rng = np.random.default_rng(0)
    values = [Value(f"t{i}", FLOAT32, (int(rng.integers(1, 500)),)) for i in range(40)]
    steps = []
    for i, v in enumerate(values):
        reads = [values[j] for j in rng.choice(i, size=min(i, 3), replace=False)] if i else []
        steps.append((reads, [v]))
    plan = plan_memory(steps, pinned=set())
    life = {}
    for t, (reads, writes) in enumerate(steps):
        for v in reads + writes:
            lo, hi = life.get(id(v), (t, t))
            life[id(v)] = (min(lo, t), max(hi, t))
    for i, u in enumerate(values):
        for v in values[i + 1 :]:
            (f1, l1), (f2, l2) = life[id(u)], life[id(v)]
            if l1 < f2 or l2 < f1:
                continue
            o1, o2 = plan.offsets[id(u)], plan.offsets[id(v)]
            assert o1 + u.nbytes <= o2 or o2 + v.nbytes <= o1, (u, v)
    assert plan.lower_bound_bytes <= plan.arena_bytes <= plan.naive_bytes
