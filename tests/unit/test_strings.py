"""String tensors (compiler/ops/strings.py, runtime_c/mlcc_strings.h): data movement and the string ops
against onnxruntime, string constants with hostile text, instance-owned outputs at the C API, and clear
errors where strings are not supported."""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import mlcc
from helpers import build_c_strictly, compile_and_load, run_mlcc, run_ort
from mlcc.errors import MlccError, UnsupportedError

S, B, I64 = TensorProto.STRING, TensorProto.BOOL, TensorProto.INT64
HOSTILE = ['"; system("x"); "', "*/ /*", "back\\slash", "??=trigraph", "line\nbreak", "中文 é", "\udcff\udcfe", ""]


def model(nodes, inputs, outputs, initializers=(), opset=20):
    graph = helper.make_graph(
        nodes,
        "strings",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def strings(*items, shape=None) -> np.ndarray:
    a = np.empty(len(items), dtype=object)
    a[:] = list(items)
    return a.reshape(shape or (len(items),))


def const(name, array):
    return numpy_helper.from_array(array, name)


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape, (g.shape, w.shape)
        if w.dtype == object:
            assert g.dtype == object and g.tolist() == w.tolist(), (g, w)
        else:
            np.testing.assert_array_equal(g, w)


def test_data_movement_ops_carry_strings_like_onnxruntime(tmp_path):
    words = strings("a", "bb", "", "中文", "x y", "z", shape=(2, 3))
    table = strings("k0", "k1", "k2", "k3")
    nodes = [
        helper.make_node("Identity", ["x"], ["id"]),
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
        helper.make_node("Concat", ["x", "x"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "starts", "ends"], ["sl"]),
        helper.make_node("Gather", ["table", "idx"], ["g"]),
        helper.make_node("Expand", ["row", "eshape"], ["e"]),
        helper.make_node("Tile", ["x", "reps"], ["ti"]),
        helper.make_node("Split", ["x"], ["s0", "s1"], axis=0, num_outputs=2),
        helper.make_node("Where", ["cond", "x", "row"], ["w"]),
        helper.make_node("Unsqueeze", ["x", "ax"], ["u"]),
        helper.make_node("Flatten", ["u"], ["f"], axis=0),
        helper.make_node("GatherElements", ["x", "ge"], ["gel"], axis=1),
        helper.make_node("Equal", ["x", "row"], ["eq"]),
    ]
    inits = [
        const("shape", np.array([6], np.int64)),
        const("starts", np.array([1, 1], np.int64)),
        const("ends", np.array([2, 6], np.int64)),
        const("table", table),
        const("row", strings("a", "", "z")),
        const("eshape", np.array([2, 3], np.int64)),
        const("reps", np.array([2, 1], np.int64)),
        const("ax", np.array([0], np.int64)),
        const("ge", np.array([[2, 0], [1, 1]], np.int64)),
    ]
    outputs = [(n, S) for n in ("id", "t", "r", "c", "sl", "g", "e", "ti", "s0", "s1", "w", "u", "f", "gel")]
    m = model(
        nodes,
        [("x", S, [2, 3]), ("idx", I64, [3]), ("cond", B, [2, 3])],
        [*outputs, ("eq", B)],
        inits,
    )
    feeds = {
        "x": words,
        "idx": np.array([3, 0, -1], np.int64),
        "cond": np.array([[True, False, True], [False, True, False]]),
    }
    assert_same(run_mlcc(m, feeds, tmp_path), run_ort(m, feeds))


def test_hostile_string_constants_reach_c_escaped_and_come_back_byte_for_byte(tmp_path):
    table = strings(*(h.encode("utf-8", "surrogateescape") for h in HOSTILE))  # "\udcff": the invalid byte 0xff
    m = model(
        [helper.make_node("Gather", ["table", "i"], ["y"]), helper.make_node("StringConcat", ["y", "x"], ["z"])],
        [("i", I64, [len(HOSTILE)]), ("x", S, [len(HOSTILE)])],
        [("y", S), ("z", S)],
        [const("table", table)],
    )
    source = build_c_strictly(m, tmp_path / "strict")  # -Wall -Wextra -Werror
    assert '{ "\\042; system(\\042x\\042); \\042", "*/ /*", "back\\134slash", "\\077\\077=trigraph",' in source
    i = np.arange(len(HOSTILE))[::-1].copy()
    x = strings(*reversed(HOSTILE))
    y, z = run_mlcc(m, {"i": i, "x": x}, tmp_path / "run")
    assert y.tolist() == list(reversed(HOSTILE))
    assert z.tolist() == [a + a for a in reversed(HOSTILE)]


SPLIT_INPUT = strings(
    "hello world", "  lead and  trail  ", "a,b,,c,", "", ",", "no-delim", "\tx\ny\rz\f", "中,文,,é", shape=(2, 4)
)


@pytest.mark.parametrize(
    "attrs",
    [{}, {"delimiter": ","}, {"delimiter": ",", "maxsplit": 1}, {"maxsplit": 1}, {"maxsplit": 0}, {"delimiter": ",,"}],
)
def test_string_split_matches_the_onnx_reference(attrs, tmp_path):
    """Against onnx's reference (Python's split): onnxruntime 1.32 splits only on spaces without a
    delimiter, where the spec says whitespace."""
    m = model([helper.make_node("StringSplit", ["x"], ["y", "n"], **attrs)], [("x", S, [2, 4])], [("y", S), ("n", I64)])
    feeds = {"x": SPLIT_INPUT}
    got = run_mlcc(m, feeds, tmp_path)
    assert_same(got, ReferenceEvaluator(m).run(None, feeds))
    # the Python reference (constant folding) agrees with the kernel
    folded = model([helper.make_node("StringSplit", ["c"], ["y", "n"], **attrs)], [], [("y", S), ("n", I64)])
    folded.graph.initializer.append(const("c", SPLIT_INPUT))
    assert_same(run_mlcc(folded, {}, tmp_path / "folded"), got)


@pytest.mark.parametrize(
    "attrs, shape",
    [
        ({"case_change_action": "LOWER", "stopwords": ["the", "A"]}, [6]),
        ({"case_change_action": "UPPER", "stopwords": ["the", "A"], "is_case_sensitive": 1}, [1, 6]),
        ({"case_change_action": "NONE"}, [6]),
        ({"stopwords": ["The", "the", "a", "A", "Cat", "mat", "sat"], "case_change_action": "LOWER"}, [1, 6]),
    ],
)
def test_string_normalizer_matches_onnxruntime(attrs, shape, tmp_path):
    m = model(
        [helper.make_node("StringNormalizer", ["x"], ["y"], locale="C", **attrs)],  # en_US (default) may be absent
        [("x", S, shape)],
        [("y", S)],
        opset=10,
    )
    feeds = {"x": strings("The", "cat", "SAT", "a", "mAt", "the", shape=tuple(shape))}
    assert_same(run_mlcc(m, feeds, tmp_path), run_ort(m, feeds))


def test_string_concat_broadcasts_and_each_run_owns_fresh_strings(tmp_path):
    m = model(
        [helper.make_node("StringConcat", ["x", "y"], ["z"]), helper.make_node("Identity", ["x"], ["xi"])],
        [("x", S, [2, 1]), ("y", S, [3])],
        [("z", S), ("xi", S)],
    )
    with compile_and_load(m, tmp_path) as c:
        for k in range(3):
            x, y = strings(f"p{k}", "q" * (1000 * k), shape=(2, 1)), strings("-", "", "中")
            z, xi = c.run({"x": x, "y": y}).values()
            want = run_ort(m, {"x": x, "y": y})
            assert_same([z, xi], want)


def test_c_api_owns_string_outputs(tmp_path):
    m = model(
        [
            helper.make_node("StringSplit", ["x"], ["y", "n"], delimiter=" "),
            helper.make_node("Identity", ["x"], ["x2"]),
        ],
        [("x", S, [2])],
        [("y", S), ("n", I64), ("x2", S)],
    )
    mlcc.compile(m, out_dir=tmp_path, name="sp")
    prog = tmp_path / "main.c"
    prog.write_text(
        textwrap.dedent(
            """
            #include <stdio.h>
            #include <string.h>
            #include "model.h"
            int main(void) {
              sp_model *m;
              if (sp_create(&m)) return 1;
              const mlcc_tensor_info *y = sp_output_info(0);
              if (y->dtype != MLCC_STRING || y->nbytes != 0 || y->dynamic_axis != 1 || y->shape[1] != 0) return 2;
              char a[] = "one two three", b[] = "four";
              mlcc_str x[2] = {a, b};
              int64_t n[2];
              void *outputs[3] = {NULL, n, NULL}; /* string outputs need no buffer */
              const void *inputs[1] = {x};
              if (sp_run(m, inputs, outputs)) return 3;
              memset(a, '#', sizeof a - 1); /* the outputs do not point into the caller's strings */
              const mlcc_str *parts = (const mlcc_str *)sp_output_data(m, 0);
              const mlcc_str *copy = (const mlcc_str *)sp_output_data(m, 2);
              int64_t dims[2];
              sp_output_shape(m, 0, dims);
              if (sp_output_data(m, 1) != NULL) return 4;
              printf("%lld %lld %lld %lld|", (long long)dims[0], (long long)dims[1], (long long)n[0], (long long)n[1]);
              for (int i = 0; i < 6; ++i) printf("%s|", parts[i]);
              printf("%s|%s\\n", copy[0], copy[1]);
              sp_destroy(m);
              return 0;
            }
            """
        )
    )
    exe = tmp_path / "main"
    subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Werror", "-I", str(tmp_path), str(prog), str(tmp_path / "libsp.a"), "-lm",
         "-pthread", "-o", str(exe)],
        check=True,
    )  # fmt: skip
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0, out
    assert out.stdout == "2 3 3 1|one|two|three|four|||one two three|four\n"


def test_string_ops_errors_are_clear(tmp_path):
    add = model([helper.make_node("Add", ["x", "x"], ["y"])], [("x", S, [2])], [("y", S)])
    with pytest.raises(UnsupportedError, match="Add '': element type string is not supported"):
        mlcc.compile(add, out_dir=tmp_path / "add", build=False)
    trilu = model([helper.make_node("Trilu", ["x"], ["y"])], [("x", S, [2, 2])], [("y", S)])
    with pytest.raises(UnsupportedError, match="Trilu '': string tensors are not supported by this operator"):
        mlcc.compile(trilu, out_dir=tmp_path / "trilu", build=False)
    split_then_use = model(
        [helper.make_node("StringSplit", ["x"], ["y", "n"]), helper.make_node("Identity", ["y"], ["z"])],
        [("x", S, [2])],
        [("z", S), ("n", I64)],
    )
    with pytest.raises(MlccError, match="depends on the data"):
        mlcc.compile(split_then_use, out_dir=tmp_path / "split", build=False)
    concat = model([helper.make_node("StringConcat", ["x", "x"], ["y"])], [("x", S, [2])], [("y", S)])
    with pytest.raises(UnsupportedError, match="--target c only"):
        mlcc.compile(concat, target="cuda", out_dir=tmp_path / "cuda", build=False)
    with compile_and_load(concat, tmp_path / "ok") as c:
        with pytest.raises(ValueError, match="holds int"):
            c.run({"x": np.array([1, 2], dtype=object)})


def _ml_model(nodes, inputs, outputs):
    m = model(nodes, inputs, outputs)
    m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 4))
    return m


@pytest.mark.parametrize(
    "attrs, x",
    [
        ({"keys_strings": ["b", "a", "中"], "values_int64s": [1, 2, 3], "default_int64": 7},
         strings("a", "b", "c", "中", "", "B")),
        ({"keys_int64s": [5, -3, 9], "values_strings": ['q"uote', "*/", "x"]}, np.array([9, 5, 0, -3, 5, 1])),
        ({"keys_floats": [1.5, float("nan"), -0.0, 2.0], "values_floats": [10.0, 20.0, 30.0, 40.0], "default_float": 0.5},
         np.array([1.5, np.nan, 0.0, -0.0, 2.0, 3.0], np.float32)),
        ({"keys_tensor": numpy_helper.from_array(np.array([3, 1, 2], np.int64)),
          "values_tensor": numpy_helper.from_array(np.array([1.25, 2.5, 3.75])),
          "default_tensor": numpy_helper.from_array(np.array([-1.0]))}, np.array([1, 2, 3, 4, -1, 2], np.int64)),
    ],
)  # fmt: skip
def test_label_encoder_matches_onnxruntime(attrs, x, tmp_path):
    types = {np.object_: S, np.int64: I64, np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32}
    out = {"values_int64s": I64, "values_strings": S, "values_floats": TensorProto.FLOAT}
    out_type = next((t for k, t in out.items() if k in attrs), TensorProto.DOUBLE)
    m = _ml_model(
        [helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", **attrs)],
        [("x", types[x.dtype.type], list(x.shape))],
        [("y", out_type)],
    )
    feeds = {"x": x}
    got = run_mlcc(m, feeds, tmp_path)
    assert_same(got, run_ort(m, feeds))
    folded = _ml_model(m.graph.node, [], [("y", out_type)])
    folded.graph.initializer.append(const("x", x))
    assert_same(run_mlcc(folded, {}, tmp_path / "folded"), got)


def test_label_encoder_repeated_key_takes_the_last_value_as_the_spec_says(tmp_path):
    """(onnxruntime 1.32 keeps the first; onnx's reference and the spec the last.)"""
    attrs = {"keys_strings": ["b", "a", "b"], "values_int64s": [1, 2, 3]}
    m = _ml_model(
        [helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", **attrs)], [("x", S, [3])], [("y", I64)]
    )
    feeds = {"x": strings("a", "b", "c")}
    got = run_mlcc(m, feeds, tmp_path)
    assert_same(got, ReferenceEvaluator(m).run(None, feeds))
    assert got[0].tolist() == [2, 3, -1]
