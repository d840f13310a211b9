"""Importer: static shapes, --input-shape binding, initializers, Constant nodes, external data, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data

from helpers import assert_close, run_mlcc, run_ort
from mlcc.errors import ModelError, ShapeError, UnsupportedError
from mlcc.importer.onnx import import_onnx


def relu_model(shape, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_symbolic_dim_unbound_names_the_input_and_dim():
    with pytest.raises(ShapeError, match=r"graph input 'x' dim 0 is symbolic \('batch'\).*--input-shape x="):
        import_onnx(relu_model(["batch", 3]))


def test_input_shape_binds_symbolic_dims_and_checks_fixed_ones():
    graph = import_onnx(relu_model(["batch", 3]), {"x": [5, 3]})
    assert graph.inputs[0].shape == (5, 3) and graph.nodes[0].outputs[0].shape == (5, 3)
    with pytest.raises(ShapeError, match="dim 1 is 4, the model fixes it to 3"):
        import_onnx(relu_model(["batch", 3]), {"x": [5, 4]})
    with pytest.raises(ShapeError, match="rank 1 given"):
        import_onnx(relu_model(["batch", 3]), {"x": [5]})
    with pytest.raises(ShapeError, match=r"names \['nope'\]"):
        import_onnx(relu_model([2, 3]), {"nope": [1]})


def test_every_opset_from_7_to_newest_imports():
    for opset in range(7, onnx.defs.onnx_opset_version() + 1):
        assert import_onnx(relu_model([2], opset)).nodes[0].version == opset


def test_unsupported_ops_are_listed_together():
    nodes = [
        helper.make_node("NonMaxSuppressionX", ["x"], ["a"], name="n1"),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("NonMaxSuppressionX", ["b"], ["c"], name="n2"),
        helper.make_node("Custom", ["c"], ["y"], domain="com.example", name="cu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(UnsupportedError) as err:
        import_onnx(model)
    text = str(err.value)
    assert "2 unsupported operator(s)" in text
    assert "NonMaxSuppressionX (domain ai.onnx, opset 17): 2 node(s): 'n1', 'n2'" in text
    assert "Custom (domain com.example, opset 1): 1 node(s): 'cu'" in text


@pytest.mark.parametrize("op", ["PackedConv", "ScaledDotProductAttention", "Fused"])
def test_mlccs_own_ops_are_not_accepted_from_a_model(op):
    """Their attributes (packed layouts, offset tables, register tiles) are trusted by the kernels: only the
    compiler's passes may make them."""
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "x", "x"], ["y"], domain="mlcc", mr=0, nr=0, name="n")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("mlcc", 1)])
    with pytest.raises(
        UnsupportedError, match=f"{op} \\(domain mlcc, opset 1\\): 1 node\\(s\\): 'n' \\(mlcc's own domain"
    ):
        import_onnx(model)


def test_constant_nodes_initializers_and_empty_optional_inputs(tmp_path):
    nodes = [
        helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(np.array(-0.5, np.float32))),
        helper.make_node("Clip", ["x", "lo", ""], ["c"]),
        helper.make_node("Add", ["c", "bias"], ["y"]),
    ]
    bias = numpy_helper.from_array(np.arange(4, dtype=np.float32), "bias")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
        [bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    assert_close(run_mlcc(model, feeds, tmp_path), run_ort(model, feeds))


def _external_model(tmp_path):
    w = numpy_helper.from_array(np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.data", size_threshold=0)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


def test_external_data_next_to_the_model(tmp_path):
    path = _external_model(tmp_path)
    feeds = {"x": np.ones((2, 64), np.float32)}
    assert_close(run_mlcc(path, feeds, tmp_path / "out"), run_ort(str(path), feeds))


@pytest.mark.parametrize("location", ["../outside.data", "/etc/passwd", "sub/../../outside.data"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path, location):
    path = _external_model(tmp_path / "m")
    (tmp_path / "outside.data").write_bytes(b"\0" * 64 * 64 * 4)
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match="outside the model's directory"):
        import_onnx(path)


def test_external_data_symlink_escaping_is_refused(tmp_path):
    path = _external_model(tmp_path / "m")
    (tmp_path / "secret.data").write_bytes((tmp_path / "m" / "weights.data").read_bytes())
    (tmp_path / "m" / "weights.data").unlink()
    (tmp_path / "m" / "weights.data").symlink_to(tmp_path / "secret.data")
    with pytest.raises(ModelError, match="outside the model's directory"):
        import_onnx(path)


def test_initializer_that_lacks_its_data_is_an_error():
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    t.float_data.extend([1.0, 2.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
        [t],
    )
    with pytest.raises(ModelError, match="'w'"):
        import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_undefined_tensor_and_cycle_are_errors():
    def build(nodes):
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    with pytest.raises(ModelError, match="undefined tensor 'ghost'"):
        import_onnx(build([helper.make_node("Add", ["x", "ghost"], ["y"])]))
    with pytest.raises(ModelError, match="cycle"):
        import_onnx(
            build(
                [
                    helper.make_node("Add", ["x", "b"], ["a"]),
                    helper.make_node("Relu", ["a"], ["b"]),
                    helper.make_node("Relu", ["a"], ["y"]),
                ]
            )
        )
