"""Scheduling and memory planning: no overlap of live tensors, in-place reuse, lower bound, peak-lowering order."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models.test_light_models import LIGHT, dummy_input
from onnx import TensorProto, helper, numpy_helper

import mlcc.pipeline
from helpers import assert_close, run_mlcc, run_ort
from mlcc.codegen.program import build_program
from mlcc.context import PassContext
from mlcc.importer.onnx import import_onnx
from mlcc.ir.dtypes import FLOAT32, INT32
from mlcc.ir.graph import Graph, Node, Value
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.common import contiguous_strides, loop_kernel
from mlcc.ops.registry import Kernel, infer_node
from mlcc.passes.memory_plan import ALIGN, inplace_input, plan_memory
from mlcc.passes.schedule import peak_bytes, schedule_nodes


def _lifetimes(steps) -> dict[int, tuple[int, int]]:
    life: dict[int, tuple[int, int]] = {}
    for t, (reads, writes) in enumerate(steps):
        for v in [*reads, *writes]:
            lo, hi = life.get(id(v), (t, t))
            life[id(v)] = (min(lo, t), max(hi, t))
    return life


def _unary(x: Value, y: Value) -> Kernel:
    """An elementwise kernel reading x at the index it stores y (in-place capable when shapes match)."""
    return loop_kernel("relu", [x], y, "v0 > 0 ? v0 : 0", list(y.shape), [contiguous_strides(x.shape)])


# -- planner ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_planner_never_overlaps_live_tensors(seed):
    """Random DAG-shaped lifetimes, a quarter of the steps in-place capable: two values whose lifetimes meet
    share bytes only when one is overwritten in place by the other at the step where it dies."""
    rng = np.random.default_rng(seed)
    values: list[Value] = []
    steps, kernels = [], []
    for i in range(60):
        if values and rng.random() < 0.25:
            x = values[int(rng.integers(len(values)))]
            y = Value(f"t{i}", FLOAT32, x.shape)
            kernels.append(_unary(x, y))
            steps.append(([x], [y]))
        else:
            y = Value(f"t{i}", FLOAT32, (int(rng.integers(1, 700)),))
            reads = [values[j] for j in rng.choice(len(values), size=min(len(values), 3), replace=False)]
            kernels.append(None)
            steps.append((reads, [y]))
        values.append(y)
    pinned = {id(values[int(k)]) for k in rng.choice(len(values), size=5, replace=False)}
    plan = plan_memory(steps, pinned, kernels)
    life = _lifetimes(steps)
    arena = [v for v in values if id(v) not in pinned]
    assert set(plan.offsets) == {id(v) for v in arena}
    shared = 0
    for i, u in enumerate(arena):
        for v in arena[i + 1 :]:
            (f1, l1), (f2, l2) = life[id(u)], life[id(v)]
            o1, o2 = plan.offsets[id(u)], plan.offsets[id(v)]
            if l1 < f2 or l2 < f1 or o1 + u.nbytes <= o2 or o2 + v.nbytes <= o1:
                continue
            k = kernels[l1]  # overlapping in both time and space: only an in-place pair u -> v may
            assert l1 == f2 and k is not None and k.inputs == [u] and k.outputs == [v], (u, v)
            assert inplace_input(k) == 0 and o1 == o2
            shared += 1
        assert plan.offsets[id(u)] % ALIGN == 0
        assert plan.offsets[id(u)] + u.nbytes <= plan.arena_bytes
    assert plan.lower_bound_bytes <= plan.arena_bytes <= plan.naive_bytes
    if seed == 0:
        assert shared > 0  # the seed exercises in-place reuse at all


def test_lower_bound_on_a_hand_example():
    a, b, c, d = (Value(n, FLOAT32, (k,)) for n, k in (("a", 256), ("b", 512), ("c", 128), ("d", 3)))
    steps = [([], [a]), ([a], [b]), ([a, b], [c]), ([c], [d])]
    # live: s0 a=1024; s1 a+b=3072; s2 a+b+c=3584; s3 c+d=512+64 (d's 12 bytes take one 64-byte slot)
    plan = plan_memory(steps, pinned=set())
    assert plan.lower_bound_bytes == 3584
    assert plan.naive_bytes == 1024 + 2048 + 512 + 64
    assert plan.arena_bytes == 3584
    assert plan_memory(steps, pinned={id(c)}).lower_bound_bytes == 3072  # a graph output is not in the arena


def test_inplace_decision():
    x, y = Value("x", FLOAT32, (4, 8)), Value("y", FLOAT32, (4, 8))
    bias, wide = Value("bias", FLOAT32, (8,)), Value("wide", FLOAT32, (2, 4, 8))
    assert inplace_input(_unary(x, y)) == 0
    add = loop_kernel("add", [bias, x], y, "v0 + v1", [4, 8], [[0, 1], [8, 1]])
    assert inplace_input(add) == 1  # the broadcast operand is not, the full one is
    transpose = loop_kernel("t", [x], Value("yt", FLOAT32, (8, 4)), "v0", [8, 4], [[1, 8]])
    assert inplace_input(transpose) is None  # shapes differ
    square, out = Value("sq", FLOAT32, (4, 4)), Value("sqt", FLOAT32, (4, 4))
    assert inplace_input(loop_kernel("t", [square], out, "v0", [4, 4], [[1, 4]])) is None  # same shape, other order
    cast = loop_kernel("cast", [x], Value("xi", INT32, (4, 8)), "(int32_t)v0", [4, 8], [[8, 1]])
    assert inplace_input(cast) is None  # another dtype
    part = loop_kernel("copy", [x], Value("cat", FLOAT32, (8, 8)), "v0", [32], [[1]])
    assert inplace_input(part) is None  # writes part of its output (Concat)
    bcast = loop_kernel("expand", [bias], wide, "v0", [2, 4, 8], [[0, 0, 1]])
    assert inplace_input(bcast) is None
    assert inplace_input(Kernel("gemm", "mm", [x], [y])) is None


def test_plan_reuses_a_dying_input_in_place_only():
    a, x, y, z = (Value(n, FLOAT32, (256,)) for n in "axyz")
    chain = [([], [a]), ([a], [x]), ([x], [y]), ([y], [z])]
    kernels = [None, None, _unary(x, y), None]
    plan = plan_memory(chain, set(), kernels)
    assert plan.offsets[id(x)] == plan.offsets[id(y)]
    assert plan.lower_bound_bytes == plan.arena_bytes == 2 * 1024
    still_read = [*chain, ([x, z], [Value("w", FLOAT32, (256,))])]  # x read after the kernel: no sharing
    plan = plan_memory(still_read, set(), [*kernels, None])
    assert plan.offsets[id(x)] != plan.offsets[id(y)]
    plan = plan_memory(chain, {id(x)}, kernels)  # a graph input/output keeps its own buffer
    assert id(x) not in plan.offsets


def _mlp(residual: bool) -> onnx.ModelProto:
    """Concat(X, X) -> Relu [-> + the Concat result] -> @ W: every intermediate is 16x64 floats (4 KiB).

    Concat writes its output in two copies, so nothing fuses into it and the Relu reads an arena tensor.
    """
    w = np.random.default_rng(5).standard_normal((64, 8)).astype(np.float32)
    nodes = [helper.make_node("Concat", ["X", "X"], ["c"], axis=1), helper.make_node("Relu", ["c"], ["r"])]
    last = "r"
    if residual:
        nodes.append(helper.make_node("Add", ["r", "c"], ["s"]))
        last = "s"
    nodes.append(helper.make_node("MatMul", [last, "W"], ["Y"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [16, 32])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [16, 8])],
        [numpy_helper.from_array(w, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("residual", [False, True])
def test_inplace_reuse_end_to_end(opt_level, residual, tmp_path):
    model = _mlp(residual)
    graph = mlcc.pipeline.run_pipeline(import_onnx(model), "c", PassContext(opt_level=opt_level))
    program = build_program(graph)
    buffers = 2 if residual and opt_level == 0 else 1  # unfused, Relu cannot overwrite c (Add reads it later)
    assert program.memory.arena_bytes == program.memory.lower_bound_bytes == buffers * 16 * 64 * 4
    step = next(s for s in program.steps if s.kernel.outputs[0].name == ("s" if residual else "r"))
    i = inplace_input(step.kernel)
    assert i is not None and program.where(step.kernel.outputs[0]) == program.where(step.kernel.inputs[i])
    feeds = {"X": np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)}
    assert_close(run_mlcc(model, feeds, tmp_path / "m", opt_level=opt_level), run_ort(model, feeds), rtol=1e-4)


# -- scheduling -------------------------------------------------------------------------------------------


def _two_branches() -> onnx.ModelProto:
    """Two branches that each blow X up (Tile, 16 KiB) and reduce it again; listed breadth-first."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 1])
    inits = [
        numpy_helper.from_array(np.array([16, 16], np.int64), "reps"),
        numpy_helper.from_array(np.array([0, 1], np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("Tile", ["X", "reps"], ["big_a"], name="tile_a"),
        helper.make_node("Neg", ["X"], ["nx"], name="neg"),
        helper.make_node("Tile", ["nx", "reps"], ["big_b"], name="tile_b"),
        helper.make_node("ReduceSum", ["big_a", "axes"], ["sum_a"], name="sum_a"),
        helper.make_node("ReduceMax", ["big_b", "axes"], ["max_b"], name="max_b"),
        helper.make_node("Add", ["sum_a", "max_b"], ["Y"], name="add"),
    ]
    return helper.make_model(
        helper.make_graph(nodes, "branches", [x], [y], inits), opset_imports=[helper.make_opsetid("", 18)]
    )


def _assert_topological(graph: Graph, nodes: list[Node]) -> None:
    assert sorted(map(id, nodes)) == sorted(map(id, graph.nodes)) and len(nodes) == len(graph.nodes)
    known = {id(v) for v in graph.inputs} | {id(v) for v in graph.constants()}
    for node in nodes:
        assert all(v is None or id(v) in known for v in node.inputs), node
        known.update(id(v) for v in node.outputs)


def test_schedule_finishes_one_branch_before_opening_the_next():
    graph = import_onnx(_two_branches())
    before = list(graph.nodes)
    peak_before = peak_bytes(graph, before)
    graph = schedule_nodes(graph)
    verify(graph, infer_node)
    _assert_topological(graph, before)
    assert peak_bytes(graph, graph.nodes) < peak_before
    # before: big_a, nx and big_b together; after: nx and big_b, then big_a beside the 4-byte max_b
    assert (peak_before, peak_bytes(graph, graph.nodes)) == (2 * 64 * 64 * 4 + 64, 64 * 64 * 4 + 64)
    assert print_graph(graph) == (
        "graph(%X: float32[4,4]) -> (%Y) {\n"
        "  %reps: int64[2] = const [16,16]\n"
        "  %axes: int64[2] = const [0,1]\n"
        "  %nx: float32[4,4] = Neg(%X)\n"
        "  %big_b: float32[64,64] = Tile(%nx, %reps)\n"
        "  %max_b: float32[1,1] = ReduceMax(%big_b, %axes)\n"
        "  %big_a: float32[64,64] = Tile(%X, %reps)\n"
        "  %sum_a: float32[1,1] = ReduceSum(%big_a, %axes)\n"
        "  %Y: float32[1,1] = Add(%sum_a, %max_b)\n"
        "}\n"
    )


def test_schedule_keeps_a_good_order_and_is_topological_on_random_dags():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = Value("x", FLOAT32, (4,))
        values, nodes = [x], []
        for i in range(25):
            picks = rng.choice(len(values), size=min(len(values), int(rng.integers(1, 3))), replace=False)
            out = Value(f"v{i}", FLOAT32, (int(rng.integers(1, 300)),))
            node = Node("Custom", [values[int(p)] for p in picks], [out], name=f"n{i}")
            out.producer = node
            values.append(out)
            nodes.append(node)
        graph = Graph("g", [x], [values[-1]], list(nodes))
        peak = peak_bytes(graph, nodes)
        graph = schedule_nodes(graph)
        _assert_topological(graph, nodes)
        assert peak_bytes(graph, graph.nodes) <= peak


def _with_schedule(monkeypatch) -> None:
    """Run schedule_nodes after every other pass (its place in compiler/pipeline.py)."""
    passes_for = mlcc.pipeline.passes_for
    monkeypatch.setattr(
        mlcc.pipeline, "passes_for", lambda target, level: [*passes_for(target, level), ("schedule", schedule_nodes)]
    )


def test_scheduled_model_matches_onnxruntime(monkeypatch, tmp_path):
    _with_schedule(monkeypatch)
    model = _two_branches()
    feeds = {"X": np.random.default_rng(2).standard_normal((4, 4)).astype(np.float32)}
    assert_close(run_mlcc(model, feeds, tmp_path / "m"), run_ort(model, feeds), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["shufflenet", "inception_v1", "densenet121"])
def test_scheduled_light_model_matches_expected_output(name, monkeypatch, tmp_path):
    """The light models whose order the schedule changes or whose plan has the most buffers."""
    _with_schedule(monkeypatch)
    path = LIGHT / f"light_{name}.onnx"
    want = numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_0.pb")))
    got = run_mlcc(path, dummy_input(onnx.load(path)), tmp_path / name)
    np.testing.assert_allclose(got[0], want, rtol=2e-3, atol=1e-7)
