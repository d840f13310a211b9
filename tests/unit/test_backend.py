"""mlcc.backend: the onnx.backend.base.Backend interface (prepare / run_model / run_node / supports_device)."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
from onnx import TensorProto, helper

import mlcc.backend as backend
from mlcc.errors import MlccError


def add_model():
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_prepare_runs_with_list_and_dict_inputs():
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2, 3], np.float32)
    rep = backend.prepare(add_model())
    (y,) = rep.run([a, b])
    np.testing.assert_array_equal(y, a + b)
    np.testing.assert_array_equal(rep.run({"a": a, "b": b})[0], a + b)
    with pytest.raises(ValueError, match="2 inputs"):
        rep.run([a])
    with pytest.raises(ValueError, match="shape"):
        rep.run([a.T, b])


def test_run_model_and_run_node():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(backend.run_model(add_model(), [x[:2, :3], x[2, :3]])[0], x[:2, :3] + x[2, :3])
    (y,) = backend.run_node(helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0]), [x])
    np.testing.assert_array_equal(y, x.T)
    y, z = backend.run_node(helper.make_node("Split", ["x"], ["y", "z"], axis=1, num_outputs=2), [x])
    np.testing.assert_array_equal(np.concatenate([y, z], axis=1), x)


def test_unsupported_op_is_a_clear_error():
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    with pytest.raises(MlccError, match="Frobnicate"):
        backend.run_node(node, [np.zeros(3, np.float32)], outputs_info=[(np.float32, (3,))])


def test_devices():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("TPU")
    with pytest.raises(MlccError, match="CPU"):
        backend.prepare(add_model(), "TPU")


def test_the_build_directory_goes_with_the_representation():
    rep = backend.prepare(add_model())
    path = rep._dir
    assert os.path.isdir(path)
    del rep
    gc.collect()
    assert not os.path.exists(path)


def test_shape_inputs_are_specialised_and_recompiled_when_they_change():
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    rep = backend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(rep.run([x, np.array([3, 2])])[0], x.reshape(3, 2))
    first = rep._dir
    np.testing.assert_array_equal(rep.run([x, np.array([3, 2])])[0], x.reshape(3, 2))
    assert rep._dir == first  # same value: no new compile
    np.testing.assert_array_equal(rep.run([x, np.array([6, -1])])[0], x.reshape(6, 1))
    assert rep._dir != first and not os.path.exists(first)
