"""Malformed and absurd models through the CLI: each gets `mlcc: error: ...` and exit status 2, with no
traceback, within bounded time and memory (a model that asks for 2^62 elements must not allocate them)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.onnx"
HUGE = 2**31  # two such dims make 2^62 elements


def _model(nodes, inputs, outputs, inits=(), opset=17) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _x(shape, name="x", elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _y(name="y"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def _wrong_attribute_type() -> bytes:
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    node.attribute.append(helper.make_attribute("strides", "two"))  # a string where ints belong
    w = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    return _model([node], [_x([1, 1, 4, 4])], [_y()], [w])


def _string_axis_in_attention() -> bytes:  # found by `make fuzz`: the attention pass read the axis as given
    q = _x([1, 4, 8], "q")
    k = numpy_helper.from_array(np.ones((1, 8, 4), np.float32), "k")
    v = numpy_helper.from_array(np.ones((1, 4, 8), np.float32), "v")
    softmax = helper.make_node("Softmax", ["s"], ["p"])
    softmax.attribute.append(helper.make_attribute("axis", "last"))
    nodes = [helper.make_node("MatMul", ["q", "k"], ["s"]), softmax, helper.make_node("MatMul", ["p", "v"], ["y"])]
    return _model(nodes, [q], [_y()], [k, v])


def _float_axis_in_layer_norm() -> bytes:  # found by `make fuzz`: the kernel took it as a slice bound
    node = helper.make_node("LayerNormalization", ["x", "g"], ["y"])
    node.attribute.append(helper.make_attribute("axis", 1.5))
    g = numpy_helper.from_array(np.ones((4,), np.float32), "g")
    return _model([node], [_x([2, 4])], [_y()], [g])


def _lying_initializer() -> bytes:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[HUGE, HUGE])
    t.raw_data = b"\0" * 16
    return _model([helper.make_node("Add", ["x", "w"], ["y"])], [_x([1])], [_y()], [t])


def _non_utf8_op_type() -> bytes:  # found by `make fuzz`: protobuf hands such an op_type back as bytes
    data = _model([helper.make_node("Zzzz", ["x"], ["y"])], [_x([2])], [_y()])
    return data.replace(b"Zzzz", b"Z\xff\xfeZ")


MALFORMED = {
    "truncated protobuf": DEMO.read_bytes()[: len(DEMO.read_bytes()) // 2],
    "garbage bytes": bytes(range(256)) * 4,
    "empty file": b"",
    "no graph": helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString(),
    "negative input dim": _model([helper.make_node("Relu", ["x"], ["y"])], [_x([2, -3])], [_y()]),
    "2^62-element input": _model([helper.make_node("Relu", ["x"], ["y"])], [_x([HUGE, HUGE])], [_y()]),
    "2^62-element ConstantOfShape": _model(
        [helper.make_node("ConstantOfShape", ["s"], ["y"])],
        [],
        [_y()],
        [numpy_helper.from_array(np.array([HUGE, HUGE], np.int64), "s")],
    ),
    "2^62-element Expand": _model(
        [helper.make_node("Expand", ["x", "s"], ["y"])],
        [_x([1, 1])],
        [_y()],
        [numpy_helper.from_array(np.array([HUGE, HUGE], np.int64), "s")],
    ),
    "initializer that lies about its size": _lying_initializer(),
    "wrong attribute type": _wrong_attribute_type(),
    "string axis of a Softmax between MatMuls": _string_axis_in_attention(),
    "float axis of a LayerNormalization": _float_axis_in_layer_norm(),
    "dangling node input": _model([helper.make_node("Add", ["x", "nowhere"], ["y"])], [_x([2])], [_y()]),
    "output nobody produces": _model([helper.make_node("Relu", ["x"], ["r"])], [_x([2])], [_y("missing")]),
    "cycle": _model(
        [
            helper.make_node("Add", ["x", "b"], ["a"]),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Relu", ["b"], ["y"]),
        ],  # noqa: E501
        [_x([2])],
        [_y()],
    ),
    "same tensor produced twice": _model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])], [_x([2])], [_y()]
    ),
    "Reshape to an impossible shape": _model(
        [helper.make_node("Reshape", ["x", "s"], ["y"])],
        [_x([2, 3])],
        [_y()],
        [numpy_helper.from_array(np.array([-1, -1], np.int64), "s")],
    ),
    "op type that is not UTF-8": _non_utf8_op_type(),
    "opset from the future": _model([helper.make_node("Relu", ["x"], ["y"])], [_x([2])], [_y()], opset=999),
}


def _limit_memory():  # 4 GiB of address space: an attempt to materialise 2^62 elements fails fast, not slowly
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_model_is_a_clear_error(name, tmp_path):
    (tmp_path / "m.onnx").write_bytes(MALFORMED[name])
    proc = subprocess.run(
        [sys.executable, "-m", "mlcc.cli", "m.onnx", "-o", "out", "--no-build"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stderr.startswith("mlcc: error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model.c").exists()  # nothing that looks like a result
