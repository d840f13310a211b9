"""Views (passes/views.py): Concat, Split and the reshapes stored inside other values instead of copied.

The planner is checked by simulation: random programs with views and in-place steps are planned, then
played byte for byte, and every read must find the bytes its value's writer left there. Whole models then
check which copies go and which must stay, against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc.pipeline
from helpers import assert_close, run_mlcc, run_ort
from mlcc.codegen.program import build_program
from mlcc.context import PassContext
from mlcc.importer.onnx import import_onnx
from mlcc.ir.dtypes import FLOAT32
from mlcc.ir.graph import Value
from mlcc.ops.common import contiguous_strides, loop_kernel
from mlcc.passes.memory_plan import plan_memory
from mlcc.passes.views import View, root_of

# -- the planner, by simulation -----------------------------------------------------------------------------


def _random_program(rng: np.random.Generator):
    """Steps ((reads, writes)), their kernels and views: producers, in-place capable unary steps, and
    concats, splits and reshapes made views (no step), as find_views would (a child has one parent)."""
    steps, kernels, views = [], [], {}
    made: list[Value] = []
    for i in range(50):
        r = rng.random()
        if made and r < 0.2:  # unary, in place when its input dies here
            x = made[int(rng.integers(len(made)))]
            y = Value(f"u{i}", FLOAT32, x.shape)
            steps.append(([x], [y]))
            kernels.append(loop_kernel("neg", [x], y, "-v0", list(y.shape), [contiguous_strides(x.shape)]))
        elif len(made) >= 2 and r < 0.35:  # concat of values not yet inside another
            free = [v for v in made if id(v) not in views]
            parts = [free[j] for j in rng.choice(len(free), size=min(len(free), 3), replace=False)]
            y = Value(f"c{i}", FLOAT32, (sum(v.size for v in parts),))
            offset = 0
            for v in parts:
                views[id(v)] = View(v, y, offset * 4)
                offset += v.size
            made.append(y)
            continue
        elif made and r < 0.5:  # split into 2 or 3 blocks
            x = made[int(rng.integers(len(made)))]
            cuts = sorted(set(int(c) for c in rng.integers(1, max(x.size, 2), size=2) if 0 < c < x.size))
            offset = 0
            for j, end in enumerate([*cuts, x.size]):
                s = Value(f"s{i}_{j}", FLOAT32, (end - offset,))
                views[id(s)] = View(s, x, offset * 4)
                made.append(s)
                offset = end
            continue
        elif made and r < 0.6:  # reshape
            x = made[int(rng.integers(len(made)))]
            y = Value(f"r{i}", FLOAT32, (x.size,))
            views[id(y)] = View(y, x, 0)
            made.append(y)
            continue
        else:  # a producer reading up to 3 values
            reads = [made[j] for j in rng.choice(len(made), size=min(len(made), 3), replace=False)] if made else []
            y = Value(f"p{i}", FLOAT32, (int(rng.integers(1, 200)),))
            steps.append((reads, [y]))
            kernels.append(None)
        made.append(steps[-1][1][0])
    readers = [v for v in made if rng.random() < 0.5]
    steps.append((readers, []))  # a last step reads some of everything, views included
    kernels.append(None)
    return steps, kernels, views


def _writers(views: dict[int, View], written: set[int]) -> dict[int, list[tuple[Value, int]]]:
    """Per tree (by id of its root): its values that a step writes, with their offsets in the root."""
    trees: dict[int, list[tuple[Value, int]]] = {}
    members = {id(v): v for view in views.values() for v in (view.child, view.parent)}
    for key, v in members.items():
        root, offset = root_of(views, v)
        trees.setdefault(id(root), [])
        if key in written:
            trees[id(root)].append((v, offset))
    return trees


def _source(v: Value, i: int, views: dict[int, View], trees) -> tuple[int, int]:
    """Which value's writer leaves byte i of v, and at which of its bytes: the one written value of v's
    tree that covers it (a tree's written values never overlap), or v itself outside any tree."""
    root, offset = root_of(views, v)
    if id(root) not in trees:
        return id(v), i
    at = offset + i
    found = [(id(w), at - o) for w, o in trees[id(root)] if o <= at < o + w.nbytes]
    assert len(found) == 1, (v.name, i, found)
    return found[0]


@pytest.mark.parametrize("seed", range(12))
def test_planned_views_read_what_was_written(seed):
    steps, kernels, views = _random_program(np.random.default_rng(seed))
    plan = plan_memory(steps, set(), kernels, views)
    trees = _writers(views, {id(v) for _, writes in steps for v in writes})
    for view in views.values():  # a view sits inside its parent in the arena too
        assert plan.offsets[id(view.child)] == plan.offsets[id(view.parent)] + view.offset
        root, offset = root_of(views, view.child)
        assert plan.offsets[id(view.child)] == plan.offsets[id(root)] + offset
    memory: dict[int, tuple[int, int]] = {}
    checked = 0
    for reads, writes in steps:
        for v in reads:
            base = plan.offsets[id(v)]
            for i in range(v.nbytes):
                want = _source(v, i, views, trees)
                assert memory.get(base + i) == want, (v.name, i)
                checked += 1
        for v in writes:
            base = plan.offsets[id(v)]
            for i in range(v.nbytes):
                memory[base + i] = (id(v), i)
    assert checked > 0 and views


# -- whole models --------------------------------------------------------------------------------------------


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "views",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        list(inits),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _conv_weights(rng, names_shapes):
    return [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n) for n, s in names_shapes]


def _program(model: onnx.ModelProto, opt_level: int = 2):
    graph = mlcc.pipeline.run_pipeline(import_onnx(model), "c", PassContext(opt_level=opt_level))
    return build_program(graph, views=True)


def _copies(program) -> list[str]:
    return [s.node.op for s in program.steps if s.node.op in ("Concat", "Split", "Reshape", "Flatten")]


def _check(model, feeds, tmp_path, opt_level=2):
    assert_close(run_mlcc(model, feeds, tmp_path / f"o{opt_level}", opt_level=opt_level), run_ort(model, feeds))


def _fire(batch: int, hazard: bool) -> tuple[onnx.ModelProto, dict]:
    """SqueezeNet-like: two convs concatenated on channels, then a conv. With `hazard`, a Sigmoid also reads
    one concat input after the Concat, where an in-place write would clobber the concatenation (still read
    by the last conv), and a Flatten of the concat feeds a second output."""
    rng = np.random.default_rng(1)
    inits = _conv_weights(rng, [("w1", (4, 3, 1, 1)), ("w2", (5, 3, 3, 3)), ("w3", (4, 9, 1, 1))])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"]),
        helper.make_node("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Conv", ["c", "w3"], ["y"]),
    ]
    outputs = ["y"]
    if hazard:
        nodes += [
            helper.make_node("Sigmoid", ["a"], ["s"]),
            helper.make_node("Flatten", ["c"], ["f"]),
            helper.make_node("Relu", ["f"], ["g"]),
            helper.make_node("Add", ["y", "s"], ["z"]),
        ]
        outputs = ["z", "g"]
    model = _model(nodes, [("x", [batch, 3, 6, 7])], outputs, inits)
    return model, {"x": rng.standard_normal((batch, 3, 6, 7)).astype(np.float32)}


@pytest.mark.parametrize("hazard", [False, True])
def test_concat_on_channels_at_batch_one_is_a_view(hazard, tmp_path):
    model, feeds = _fire(1, hazard)
    program = _program(model)
    assert "Concat" not in _copies(program) and "Flatten" not in _copies(program)
    for level in (0, 2):
        _check(model, feeds, tmp_path, level)


def test_concat_at_batch_two_still_copies(tmp_path):
    model, feeds = _fire(2, hazard=True)
    assert _copies(_program(model)).count("Concat") == 2  # 2 batches x 2 channel blocks: not contiguous
    _check(model, feeds, tmp_path)


def test_split_then_concat_and_repeated_inputs(tmp_path):
    """A Split's blocks are views of its input, so a Concat of them copies (a value has one parent); a
    Concat of one value twice copies the second; a graph output stays the caller's buffer."""
    rng = np.random.default_rng(2)
    inits = _conv_weights(rng, [("w1", (6, 3, 1, 1)), ("w2", (3, 3, 1, 1))])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"]),
        helper.make_node("Split", ["a"], ["p", "q"], axis=1, num_outputs=2),
        helper.make_node("Tanh", ["p"], ["t"]),  # p dies here, but its tree (a, q) lives on
        helper.make_node("Concat", ["q", "t", "q"], ["c"], axis=1),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Concat", ["r", "a"], ["out"], axis=1),  # a graph output: not a view's parent
        helper.make_node("Conv", ["q", "w2"], ["y"]),
    ]
    model = _model(nodes, [("x", [1, 3, 5, 5])], ["out", "y"], inits)
    program = _program(model)
    ops = _copies(program)
    assert "Split" not in ops
    assert ops.count("Concat") == 2 + 2  # q (already inside a) and the repeated q; both blocks of "out"
    feeds = {"x": rng.standard_normal((1, 3, 5, 5)).astype(np.float32)}
    for level in (0, 1, 2):
        _check(model, feeds, tmp_path, level)


def test_nested_concats_share_one_buffer(tmp_path):
    """DenseNet's pattern: each layer concatenates the previous concatenation with a new feature map."""
    rng = np.random.default_rng(3)
    inits, nodes, prev, ch = [], [], "x", 4
    for i in range(4):
        inits += _conv_weights(rng, [(f"w{i}", (2, ch, 3, 3))])
        nodes += [
            helper.make_node("Relu", [prev], [f"r{i}"]),
            helper.make_node("Conv", [f"r{i}", f"w{i}"], [f"f{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Concat", [prev, f"f{i}"], [f"c{i}"], axis=1),
        ]
        prev, ch = f"c{i}", ch + 2
    inits += _conv_weights(rng, [("wo", (3, ch, 1, 1))])
    nodes.append(helper.make_node("Conv", [prev, "wo"], ["y"]))
    model = _model(nodes, [("x", [1, 4, 6, 6])], ["y"], inits)
    program = _program(model)
    assert _copies(program).count("Concat") == 1  # only the graph input x is copied in
    chain = [v for s in program.steps for v in s.kernel.outputs if v.name.startswith("f")]
    first = program.where(chain[0]).index
    assert [program.where(v).index - first for v in chain] == [2 * 36 * 4 * i for i in range(4)]
    feeds = {"x": rng.standard_normal((1, 4, 6, 6)).astype(np.float32)}
    for level in (0, 2):
        _check(model, feeds, tmp_path, level)


def test_reshape_is_a_view_and_blocks_in_place_writes(tmp_path):
    """y = Reshape(a) shares a's bytes, so Exp(a), where a dies, must not overwrite them while y lives."""
    rng = np.random.default_rng(4)
    inits = _conv_weights(rng, [("w", (4, 2, 1, 1))])
    inits.append(numpy_helper.from_array(np.array([1, 4, 16], np.int64), "shape"))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"]),
        helper.make_node("Reshape", ["a", "shape"], ["r"]),
        helper.make_node("Exp", ["a"], ["e"]),
        helper.make_node("ReduceSum", ["e"], ["s"], keepdims=1),
        helper.make_node("Softmax", ["r"], ["m"], axis=-1),
        helper.make_node("Mul", ["m", "s"], ["y"]),
    ]
    model = _model(nodes, [("x", [1, 2, 4, 4])], ["y"], inits)
    assert "Reshape" not in _copies(_program(model, opt_level=1))
    feeds = {"x": rng.standard_normal((1, 2, 4, 4)).astype(np.float32)}
    for level in (0, 1, 2):
        _check(model, feeds, tmp_path, level)


def test_cuda_program_stores_views_in_place(tmp_path):
    """The cuda target plans views too (its kernels assume no more than their element type's alignment): the
    generated source launches no Concat copy and says where each copy was left out. (That the views run right
    on a GPU: tests/gpu, the light models with Concat, Flatten and Reshape.)"""
    model, _ = _fire(1, hazard=False)
    mlcc.compile(model, target="cuda", out_dir=tmp_path, build=False)
    source = (tmp_path / "model.cu").read_text()
    launches = [line for line in source.splitlines() if "<<<" in line]
    assert launches and not any("Concat" in line for line in launches)
    assert "Concat" in source and "is stored in place" in source


@pytest.mark.parametrize("reverse", [False, True])
def test_concat_blocks_from_every_kernel_kind(reverse, tmp_path):
    """Each block of a concatenation written by a different kernel (packed, direct and depthwise convs with
    fused epilogues, pools, elementwise, softmax, GEMM, MatMul) at odd sizes, the blocks in production order
    and reversed: a kernel that stored past its output's end would clobber a neighbour."""
    rng = np.random.default_rng(5)
    inits = _conv_weights(
        rng,
        [("w3", (5, 3, 3, 3)), ("w1", (3, 3, 1, 1)), ("wd", (3, 1, 3, 3)), ("b", (5,)),
         ("m", (7, 9)), ("g", (7, 9)), ("gb", (9,))],
    )  # fmt: skip
    image = [
        helper.make_node("Conv", ["x", "w3", "b"], ["c3"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Conv", ["x", "w1"], ["c1"]),
        helper.make_node("Conv", ["x", "wd"], ["cd"], pads=[1, 1, 1, 1], group=3),
        helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["x"], ["ap"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]),
        helper.make_node("Sigmoid", ["x"], ["sg"]),
        helper.make_node("Softmax", ["x"], ["sm"], axis=1),
    ]
    blocks = ["r3", "c1", "cd", "mp", "ap", "sg", "sm"]
    rows = [
        helper.make_node("MatMul", ["v", "m"], ["mm"]),
        helper.make_node("Gemm", ["u", "g", "gb"], ["gm"]),
        helper.make_node("Tanh", ["mm"], ["th"]),
    ]
    row_blocks = ["gm", "th", "mm"]
    if reverse:
        blocks, row_blocks = blocks[::-1], row_blocks[::-1]
    nodes = [
        *image,
        helper.make_node("Concat", blocks, ["cat"], axis=1),
        helper.make_node("Neg", ["cat"], ["y"]),
        *rows,
        helper.make_node("Concat", row_blocks, ["rcat"], axis=0),
        helper.make_node("Abs", ["rcat"], ["z"]),
    ]
    model = _model(nodes, [("x", [1, 3, 7, 5]), ("v", [5, 7]), ("u", [3, 7])], ["y", "z"], inits)
    program = _program(model)
    assert "Concat" not in _copies(program)
    feeds = {
        k: rng.standard_normal(s).astype(np.float32) for k, s in [("x", (1, 3, 7, 5)), ("v", (5, 7)), ("u", (3, 7))]
    }
    for threads in ("1", "2"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLCC_NUM_THREADS", threads)
            _check(model, feeds, tmp_path / threads)
