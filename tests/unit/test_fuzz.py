"""Fuzzing the front end and code generation with mutated valid models.

Every mutated model must compile (sources only) or fail with an MlccError; any other exception is a bug.
`make test` runs a bounded number of cases; `make fuzz` (MLCC_FUZZ_EXAMPLES=N) runs many more.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

import mlcc
from mlcc.errors import MlccError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("MLCC_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("MLCC_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def seed_models() -> list[bytes]:
    demo = onnx.load(ROOT / "examples" / "demo.onnx")
    demo.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    rng = np.random.default_rng(0)
    shape_graph = helper.make_graph(
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
            helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
            helper.make_node("Reshape", ["x", "shape"], ["r"]),
            helper.make_node("MatMul", ["r", "w"], ["mm"]),
            helper.make_node("Transpose", ["mm"], ["t"], perm=[1, 0]),
            helper.make_node("Slice", ["t", "st", "en"], ["sl"]),
            helper.make_node("Split", ["sl"], ["y", "z"], axis=0, num_outputs=2),
        ],
        "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
        [
            numpy_helper.from_array(np.array(0, np.int64), "i"),
            numpy_helper.from_array(np.array([0], np.int64), "axes"),
            numpy_helper.from_array(np.array([-1], np.int64), "m1"),
            numpy_helper.from_array(rng.standard_normal((12, 6)).astype(np.float32), "w"),
            numpy_helper.from_array(np.array([0], np.int64), "st"),
            numpy_helper.from_array(np.array([4], np.int64), "en"),
        ],
    )
    shapes = helper.make_model(shape_graph, opset_imports=[helper.make_opsetid("", 18)])
    return [demo.SerializeToString(), shapes.SerializeToString()]


SEEDS = seed_models()


def compile_or_refuse(data: bytes, tmp: Path) -> None:
    path = tmp / "m.onnx"
    path.write_bytes(data)
    try:
        mlcc.compile(path, out_dir=tmp / "out", build=False, force=True)
    except MlccError:
        pass


@FUZZ
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from("fid")), max_size=8),
    cut=st.integers(0, 10**6),
)
def test_byte_mutations(tmp_path_factory, seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for position, value, kind in edits:
        at = position % max(len(data), 1)
        if kind == "f":
            data[at] = value
        elif kind == "i":
            data.insert(at, value)
        else:
            del data[at]
    if cut % 3 == 0:
        data = data[: cut % max(len(data), 1)]
    compile_or_refuse(bytes(data), tmp_path_factory.mktemp("b"))


INTS = st.one_of(st.integers(-3, 9), st.sampled_from([0, -1, 2**31, -(2**62), 2**62]))


def _mutate_attribute(attr: AttributeProto, draw) -> None:
    choice = draw(st.integers(0, 3))
    if choice == 0 and attr.type == AttributeProto.INTS:
        attr.ints[:] = draw(st.lists(INTS, max_size=7))
    elif choice == 1:
        attr.type = draw(
            st.sampled_from([AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS])
        )
        attr.i, attr.f, attr.s = draw(INTS), draw(st.floats(allow_nan=True)), draw(st.binary(max_size=8))
    elif choice == 2 and attr.type == AttributeProto.INT:
        attr.i = draw(INTS)
    else:
        attr.name = draw(st.sampled_from(["axis", "perm", "pads", "strides", "group", "kernel_shape", "bogus"]))


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data())
def test_structured_mutations(tmp_path_factory, seed, data):
    model = onnx.ModelProto.FromString(SEEDS[seed])
    graph = model.graph
    for _ in range(data.draw(st.integers(1, 4))):
        what = data.draw(st.sampled_from(["attr", "dim", "input", "dtype", "init", "op", "output", "opset"]))
        node = graph.node[data.draw(st.integers(0, len(graph.node) - 1))]
        if what == "attr" and node.attribute:
            _mutate_attribute(node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))], data.draw)
        elif what == "dim":
            dims = graph.input[0].type.tensor_type.shape.dim
            dims[data.draw(st.integers(0, len(dims) - 1))].dim_value = data.draw(INTS)
        elif what == "input" and node.input:
            node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(
                st.sampled_from(["", "ghost", graph.node[0].output[0], node.output[0]])
            )
        elif what == "dtype":
            init = graph.initializer[data.draw(st.integers(0, len(graph.initializer) - 1))]
            init.data_type = data.draw(st.sampled_from([0, 2, 7, 8, 10, 16, 17, 23, 40]))
        elif what == "init":
            init = graph.initializer[data.draw(st.integers(0, len(graph.initializer) - 1))]
            init.dims[:] = data.draw(st.lists(INTS, max_size=5))
        elif what == "op":
            node.op_type = data.draw(
                st.sampled_from(
                    ["Relu", "Conv", "Gemm", "Reshape", "Concat", "Softmax", "Gather", "MaxPool", "Slice", "Nope"]
                )
            )
        elif what == "output":
            node.output[0] = data.draw(st.sampled_from(["x", "", graph.node[-1].output[0], "dup"]))
        else:
            model.opset_import[0].version = data.draw(st.integers(-1, 30))
    compile_or_refuse(model.SerializeToString(), tmp_path_factory.mktemp("s"))
