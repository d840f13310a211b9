"""If, Loop and Scan, resolved at import (compiler/importer/control_flow.py), against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import assert_close, run_mlcc, run_ort
from mlcc.errors import MlccError

F = TensorProto.FLOAT


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name))


def model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "cf", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_if_with_a_run_time_condition_selects_a_branch(tmp_path):
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["t"])], "then", [], [vi("t", [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", [2, 3])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"]),
        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    m = model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], [numpy_helper.from_array(np.float32(0), "zero")])
    for k, sign in enumerate((1, -1)):
        x = {"x": (sign * np.abs(np.random.default_rng(k).standard_normal((2, 3)))).astype(np.float32)}
        assert_close(run_mlcc(m, x, tmp_path / f"out{k}"), run_ort(m, x))


def test_if_with_a_constant_condition_imports_only_the_branch_taken(tmp_path):
    bad = helper.make_graph(  # a branch that could not even be shaped: it must never be imported
        [helper.make_node("Reshape", ["x", "odd"], ["b"])], "bad", [], [vi("b", None)]
    )
    good = helper.make_graph([helper.make_node("Relu", ["x"], ["g"])], "good", [], [vi("g", [4])])
    nodes = [
        const("odd", np.array([3], np.int64)),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ReduceProd", ["shape"], ["n"], keepdims=0),
        helper.make_node("Equal", ["n", "four"], ["c"]),
        helper.make_node("If", ["c"], ["y"], then_branch=good, else_branch=bad),
    ]
    m = model(nodes, [vi("x", [4])], [vi("y", [4])], [numpy_helper.from_array(np.int64(4), "four")])
    x = {"x": np.array([-1, 2, -3, 4], np.float32)}
    assert_close(run_mlcc(m, x, tmp_path / "out"), run_ort(m, x))


def loop_model(trip: int, opset: int = 17) -> onnx.ModelProto:
    """acc += x * i for i < trip, with a scan output of every partial sum and an If on the counter."""
    inc = helper.make_graph([helper.make_node("Add", ["a", "x"], ["r"])], "inc", [], [vi("r", [3])])
    dec = helper.make_graph([helper.make_node("Sub", ["a", "x"], ["r2"])], "dec", [], [vi("r2", [3])])
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["i"], ["fi"], to=F),
            helper.make_node("Mul", ["acc", "fi"], ["a"]),
            helper.make_node("Mod", ["i", "two"], ["odd"]),
            helper.make_node("Cast", ["odd"], ["odd_b"], to=TensorProto.BOOL),
            helper.make_node("If", ["odd_b"], ["acc2"], then_branch=inc, else_branch=dec),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
            helper.make_node("Identity", ["acc2"], ["partial"]),
        ],
        "body",
        [vi("i", [], TensorProto.INT64), vi("c_in", [], TensorProto.BOOL), vi("acc", [3])],
        [vi("c_out", [], TensorProto.BOOL), vi("acc2", [3]), vi("partial", [3])],
        [numpy_helper.from_array(np.int64(2), "two")],
    )
    nodes = [helper.make_node("Loop", ["M", "", "acc0"], ["acc_final", "partials"], body=body)]
    inits = [numpy_helper.from_array(np.int64(trip), "M"), numpy_helper.from_array(np.ones(3, np.float32), "acc0")]
    return model(nodes, [vi("x", [3])], [vi("acc_final", [3]), vi("partials", [trip, 3])], inits, opset)


@pytest.mark.parametrize("opset", [11, 17])
def test_loop_is_unrolled_with_scan_outputs_and_a_nested_if(opset, tmp_path):
    m = loop_model(5, opset)
    x = {"x": np.array([0.5, -1.0, 2.0], np.float32)}
    assert_close(run_mlcc(m, x, tmp_path / "out"), run_ort(m, x))


def test_loop_trip_count_beyond_the_unroll_cap_is_a_clear_error(tmp_path):
    with pytest.raises(MlccError, match="unrolls loops|copies of its bodies"):
        mlcc.compile(loop_model(100_000), out_dir=tmp_path / "out", build=False)


def test_loop_whose_condition_depends_on_data_is_a_clear_error(tmp_path):
    body = helper.make_graph(
        [
            helper.make_node("Add", ["v", "v"], ["v2"]),
            helper.make_node("ReduceMax", ["v2"], ["mx"], keepdims=0),
            helper.make_node("Less", ["mx", "lim"], ["c_out"]),
        ],  # fmt: skip
        "body",
        [vi("i", [], TensorProto.INT64), vi("c", [], TensorProto.BOOL), vi("v", [2])],
        [vi("c_out", [], TensorProto.BOOL), vi("v2", [2])],
        [numpy_helper.from_array(np.float32(100), "lim")],
    )
    inits = [numpy_helper.from_array(np.int64(10), "M"), numpy_helper.from_array(np.array(True), "c0")]
    m = model([helper.make_node("Loop", ["M", "c0", "x"], ["y"], body=body)], [vi("x", [2])], [vi("y", [2])], inits)
    with pytest.raises(MlccError, match="condition is computed from run-time data"):
        mlcc.compile(m, out_dir=tmp_path / "out", build=False)


def test_scan_with_reverse_input_and_output_axis(tmp_path):
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s", "row"], ["s2"]),
            helper.make_node("Mul", ["p", "row"], ["p2"]),
            helper.make_node("Sub", ["s2", "p2"], ["o"]),
        ],
        "body",
        [vi("s", [4]), vi("p", [4]), vi("row", [4])],
        [vi("s2", [4]), vi("p2", [4]), vi("o", [4])],
    )
    scan = helper.make_node(
        "Scan", ["s0", "p0", "x"], ["s_final", "p_final", "ys"], body=body, num_scan_inputs=1,
        scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[-1],
    )  # fmt: skip
    inits = [
        numpy_helper.from_array(np.zeros(4, np.float32), "s0"),
        numpy_helper.from_array(np.ones(4, np.float32), "p0"),
    ]  # noqa: E501
    m = model([scan], [vi("x", [4, 6])], [vi("s_final", [4]), vi("p_final", [4]), vi("ys", [4, 6])], inits)
    x = {"x": np.random.default_rng(3).uniform(0.5, 1.5, (4, 6)).astype(np.float32)}
    assert_close(run_mlcc(m, x, tmp_path / "out"), run_ort(m, x))


def scan8(sequence_lens=None):
    """Scan-8: a leading batch axis on the state and the scan input, scanned along axis 1, in reverse."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "row"], ["s2"]), helper.make_node("Mul", ["s2", "row"], ["o"])],
        "body",
        [vi("s", [4]), vi("row", [4])],
        [vi("s2", [4]), vi("o", [4])],
    )
    nodes = [] if sequence_lens is None else [const("lens", np.array(sequence_lens, np.int64))]
    nodes.append(
        helper.make_node(
            "Scan",
            ["" if sequence_lens is None else "lens", "s0", "x"],
            ["s_final", "ys"],
            body=body,
            num_scan_inputs=1,
            directions=[1],
        )  # fmt: skip
    )
    return model(nodes, [vi("s0", [2, 4]), vi("x", [2, 5, 4])], [vi("s_final", [2, 4]), vi("ys", [2, 5, 4])], opset=8)


def test_scan8_is_unrolled_per_batch_item(tmp_path):
    rng = np.random.default_rng(4)
    feeds = {
        "s0": rng.standard_normal((2, 4)).astype(np.float32),
        "x": rng.standard_normal((2, 5, 4)).astype(np.float32),
    }
    for lens, out in ((None, "plain"), ([5, 5], "full_lens")):
        m = scan8(lens)
        assert_close(run_mlcc(m, feeds, tmp_path / out), run_ort(m, feeds))
    with pytest.raises(MlccError, match="sequence_lens other than the full length"):
        mlcc.compile(scan8([5, 3]), out_dir=tmp_path / "short", build=False)
