"""Sequence and optional values, resolved at import (compiler/importer/sequences.py), against onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import mlcc
import mlcc.backend
from helpers import run_ort
from mlcc.cli import main
from mlcc.errors import CompileTimeValueError, MlccError

F, I64 = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(7)


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def seq_vi(name, shape, elem=F):
    return helper.make_value_info(name, helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, shape)))


def const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name))


def model(nodes, inputs, outputs, opset=18):
    graph = helper.make_graph(nodes, "seq", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def assert_same(got, want, rtol=1e-5, atol=1e-6):
    """Outputs equal in structure (lists for sequences) and close in value."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            assert_same(g, w, rtol, atol)
        return
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def run_both(m, feeds, tmp_path, **options):
    mlcc.compile(m, out_dir=tmp_path / "out", **options)
    compiled = mlcc.load(tmp_path / "out")  # left open: the caller runs it again
    got = compiled.run(feeds)
    want = run_ort(m, feeds)
    assert len(want) == len(compiled.graph_outputs)
    for n, w in zip(compiled.graph_outputs, want):
        assert_same(got[n], w)
    return compiled, got


def test_split_loop_insert_and_concat_match_onnxruntime(tmp_path):
    """SplitToSequence, a Loop over the elements (SequenceLength, SequenceAt, SequenceInsert), SequenceErase,
    ConcatFromSequence (both forms): everything becomes ordinary nodes."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond"], ["cond_out"]),
            helper.make_node("SequenceAt", ["parts", "i"], ["x_i"]),
            helper.make_node("Relu", ["x_i"], ["r"]),
            helper.make_node("ReduceSum", ["r", "one"], ["s"], keepdims=1),
            helper.make_node("SequenceInsert", ["acc", "s"], ["acc_out"]),
        ],
        "body",
        [vi("i", [], I64), vi("cond", [], TensorProto.BOOL), seq_vi("acc", None)],
        [vi("cond_out", [], TensorProto.BOOL), seq_vi("acc_out", None)],
    )
    nodes = [
        const("split", np.array([1, 2, 3], np.int64)),
        const("one", np.array([1], np.int64)),
        const("yes", np.array(True)),
        helper.make_node("SplitToSequence", ["x", "split"], ["parts"], axis=1),
        helper.make_node("SequenceLength", ["parts"], ["n"]),
        helper.make_node("SequenceEmpty", [], ["empty"], dtype=F),
        helper.make_node("Loop", ["n", "yes", "empty"], ["sums"], body=body),
        helper.make_node("ConcatFromSequence", ["sums"], ["y"], axis=1),
        helper.make_node("SequenceErase", ["parts", "minus_one"], ["front"]),
        helper.make_node("ConcatFromSequence", ["front"], ["z"], axis=1),
        helper.make_node("SplitToSequence", ["x"], ["rows"], axis=0, keepdims=0),
        helper.make_node("ConcatFromSequence", ["rows"], ["stacked"], axis=-1, new_axis=1),
        const("minus_one", np.array(-1, np.int64)),
    ]
    m = model(nodes, [vi("x", [4, 6])], [vi("y", None), vi("z", None), vi("stacked", None), seq_vi("front", None)])
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    compiled, got = run_both(m, {"x": x}, tmp_path)
    assert [t.name for t in compiled.outputs] == ["y", "z", "stacked", "front[0]", "front[1]"]
    np.testing.assert_allclose(got["y"][:, 1], np.maximum(x[:, 1:3], 0).sum(1), rtol=1e-5)


def test_sequence_graph_input_and_output(tmp_path):
    """A sequence input is bound at compile time (element shapes; symbolic dims allowed); in the C API each
    element is one tensor, NAME[i], and model.json says how they group."""
    nodes = [
        helper.make_node("SequenceInsert", ["xs", "t", "zero"], ["ys"]),
        helper.make_node("ConcatFromSequence", ["xs"], ["cat"], axis=0),
        helper.make_node("SequenceLength", ["ys"], ["n"]),
        const("zero", np.array(0, np.int64)),
    ]
    m = model(
        nodes,
        [seq_vi("xs", ["N", 3]), vi("t", [1, 3])],
        [seq_vi("ys", None), vi("cat", None), vi("n", [], I64)],
    )
    feeds = {"xs": [RNG.standard_normal((d, 3)).astype(np.float32) for d in (2, 4)], "t": np.ones((1, 3), np.float32)}
    compiled, got = run_both(m, feeds, tmp_path, input_shapes={"xs": [[2, 3], [4, 3]]})
    assert [t.name for t in compiled.inputs] == ["xs[0]", "xs[1]", "t"]
    assert [t.name for t in compiled.outputs] == ["ys[0]", "ys[1]", "ys[2]", "cat", "n"]
    manifest = json.loads((tmp_path / "out" / "model.json").read_text())
    assert manifest["signature"]["inputs"][0] == {"name": "xs", "form": "sequence", "items": ["xs[0]", "xs[1]"]}
    assert int(got["n"]) == 3
    with pytest.raises(ValueError, match="a sequence of 2 tensors was compiled, 3 arrays given"):
        compiled.run({**feeds, "xs": feeds["xs"] + feeds["xs"][:1]})
    with pytest.raises(ValueError, match="shape"):
        compiled.run({**feeds, "xs": feeds["xs"][::-1]})
    with pytest.raises(MlccError, match=r"is a sequence.*--input-shape 'xs=\[\[D0"):
        mlcc.compile(m, out_dir=tmp_path / "unbound")


@pytest.mark.parametrize("opset", [11, 18])  # Unsqueeze takes its axes as an attribute before opset 13
def test_sequence_at_with_a_run_time_position_gathers(tmp_path, opset):
    """Elements of one shape: SequenceAt takes a run-time position (negative too) without recompiling."""
    nodes = [
        helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]),
        helper.make_node("SequenceAt", ["s", "p"], ["y"]),
    ]
    m = model(nodes, [vi("a", [2, 3]), vi("b", [2, 3]), vi("c", [2, 3]), vi("p", [], I64)], [vi("y", [2, 3])], opset)
    arrays = {k: RNG.standard_normal((2, 3)).astype(np.float32) for k in "abc"}
    mlcc.compile(m, out_dir=tmp_path / "out")
    with mlcc.load(tmp_path / "out") as compiled:
        for p in (-3, -1, 0, 2):
            feeds = {**arrays, "p": np.array(p, np.int64)}
            np.testing.assert_array_equal(compiled.run(feeds)["y"], run_ort(m, feeds)[0])


def test_if_with_a_run_time_condition_selects_sequences(tmp_path):
    then_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["nx"]), helper.make_node("SequenceConstruct", ["x", "nx"], ["t"])],
        "then", [], [seq_vi("t", [3])],
    )  # fmt: skip
    else_g = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["ax"]), helper.make_node("SequenceConstruct", ["ax", "x"], ["e"])],
        "else", [], [seq_vi("e", [3])],
    )  # fmt: skip
    nodes = [
        helper.make_node("If", ["c"], ["s"], then_branch=then_g, else_branch=else_g),
        helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0),
    ]
    m = model(nodes, [vi("x", [3]), vi("c", [], TensorProto.BOOL)], [vi("y", None), seq_vi("s", None)])
    x = RNG.standard_normal(3).astype(np.float32)
    mlcc.compile(m, out_dir=tmp_path / "out")
    with mlcc.load(tmp_path / "out") as compiled:
        for c in (True, False):
            feeds = {"x": x, "c": np.array(c)}
            got, want = compiled.run(feeds), run_ort(m, feeds)
            assert_same(got["y"], want[0])
            assert_same(got["s"], want[1])


def optional_branches():
    """If whose branches give an empty optional or a present one: the condition decides the output's kind."""
    then_g = helper.make_graph(
        [helper.make_node("Optional", [], ["o"], type=helper.make_sequence_type_proto(
            helper.make_tensor_type_proto(F, [2])))],
        "then", [], [helper.make_value_info("o", helper.make_optional_type_proto(
            helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2]))))],
    )  # fmt: skip
    else_g = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["sq"]), helper.make_node("Optional", ["sq"], ["o2"])],
        "else", [], [helper.make_value_info("o2", helper.make_optional_type_proto(
            helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2]))))],
    )  # fmt: skip
    out = helper.make_value_info(
        "y", helper.make_optional_type_proto(helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2])))
    )
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    return model(nodes, [vi("x", [2]), vi("c", [], TensorProto.BOOL)], [out])


def test_an_optional_whose_presence_depends_on_the_data_needs_the_condition(tmp_path):
    m = optional_branches()
    with pytest.raises(CompileTimeValueError, match=r"condition .*an empty optional or an optional sequence"):
        mlcc.compile(m, out_dir=tmp_path / "out")
    rep = mlcc.backend.prepare(m)  # specialises on the condition
    x = np.array([1.5, -2], np.float32)
    assert rep.run([x, np.array(True)])[0] is None
    got = rep.run([x, np.array(False)])[0]
    assert isinstance(got, list) and len(got) == 1
    np.testing.assert_array_equal(got[0], x)


def test_optional_inputs_present_or_absent(tmp_path):
    """An optional input is present unless bound to none; OptionalHasElement folds either way."""
    opt = helper.make_value_info("o", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [3])))
    nodes = [helper.make_node("OptionalHasElement", ["o"], ["has"]), helper.make_node("Identity", ["o"], ["same"])]
    has = vi("has", [], TensorProto.BOOL)
    same = helper.make_value_info("same", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [3])))
    m = model(nodes, [opt], [has, same])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    x = np.arange(3, dtype=np.float32)
    runner = CliRunner()
    result = runner.invoke(main, [str(path), "-o", str(tmp_path / "absent"), "--input-shape", "o=none"])
    assert result.exit_code == 0, result.output
    with mlcc.load(tmp_path / "absent") as compiled:
        assert compiled.inputs == []
        got = compiled.run({"o": None})
        assert bool(got["has"]) is False and got["same"] is None
        with pytest.raises(ValueError, match="absent optional"):
            compiled.run({"o": x})
    result = runner.invoke(main, [str(path), "-o", str(tmp_path / "present")])
    assert result.exit_code == 0, result.output
    with mlcc.load(tmp_path / "present") as compiled:
        assert [t.name for t in compiled.inputs] == ["o"] and [t.name for t in compiled.outputs] == ["has", "same"]
        got = compiled.run({"o": x})
        assert bool(got["has"]) is True
        np.testing.assert_array_equal(got["same"], x)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("x=none", "only an optional input can be absent"),
        ("x=[[2,3]]", "is a tensor; give D0,D1"),
        ("x=[[2,a]]", "a sequence is"),
    ],
)
def test_cli_binding_errors(tmp_path, spec, message):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3])], [vi("y", None)])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    result = CliRunner().invoke(main, [str(path), "-o", str(tmp_path / "o"), "--input-shape", spec])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_binds_a_sequence_input(tmp_path):
    m = model(
        [helper.make_node("ConcatFromSequence", ["xs"], ["y"], axis=1)], [seq_vi("xs", [2, "K"])], [vi("y", None)]
    )
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    result = CliRunner().invoke(main, [str(path), "-o", str(tmp_path / "o"), "--input-shape", "xs=[[2,1],[2,3]]"])
    assert result.exit_code == 0, result.output
    parts = [np.ones((2, 1), np.float32), np.full((2, 3), 2, np.float32)]
    with mlcc.load(tmp_path / "o") as compiled:
        np.testing.assert_array_equal(compiled.run({"xs": parts})["y"], np.concatenate(parts, 1))


def test_sequence_errors_are_clear(tmp_path):
    run_time_position = model(
        [helper.make_node("SequenceConstruct", ["a"], ["s"]), helper.make_node("SequenceInsert", ["s", "a", "p"], ["t"]),
         helper.make_node("ConcatFromSequence", ["t"], ["y"], axis=0)],
        [vi("a", [2]), vi("p", [], I64)], [vi("y", None)],
    )  # fmt: skip
    with pytest.raises(CompileTimeValueError, match="position 'p' is computed at run time"):
        mlcc.compile(run_time_position, out_dir=tmp_path / "a")
    empty_concat = model(
        [helper.make_node("SequenceEmpty", [], ["s"]), helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)],
        [], [vi("y", None)],
    )  # fmt: skip
    with pytest.raises(MlccError, match="concatenates an empty sequence"):
        mlcc.compile(empty_concat, out_dir=tmp_path / "b")
    tensor_op_on_sequence = model(
        [helper.make_node("SequenceConstruct", ["a"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
        [vi("a", [2])], [vi("y", None)],
    )  # fmt: skip
    with pytest.raises(MlccError, match="input 's' is a sequence or optional; the operator takes tensors"):
        mlcc.compile(tensor_op_on_sequence, out_dir=tmp_path / "c")
    out_of_range = model(
        [helper.make_node("SequenceConstruct", ["a"], ["s"]), const("p", np.array(3, np.int64)),
         helper.make_node("SequenceAt", ["s", "p"], ["y"])],
        [vi("a", [2])], [vi("y", None)],
    )  # fmt: skip
    with pytest.raises(MlccError, match=r"position 3 is outside \[-1, 0\]"):
        mlcc.compile(out_of_range, out_dir=tmp_path / "d")
    huge_split = model(
        [helper.make_node("SplitToSequence", ["a"], ["s"], keepdims=0),
         helper.make_node("SequenceLength", ["s"], ["n"])],
        [vi("a", [5000])], [vi("n", [], I64)],
    )  # fmt: skip
    with pytest.raises(MlccError, match="makes a sequence of 5000 tensors; mlcc allows 4096"):
        mlcc.compile(huge_split, out_dir=tmp_path / "e")
