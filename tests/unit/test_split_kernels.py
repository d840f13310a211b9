"""Large memory-bound kernels (elementwise loops, concat and split copies, pools) split over the thread
pool (codegen/backends/c.py SPLIT_FAMILIES): the same results as onnxruntime with 1, 2 and 3 threads, and
small kernels left on the calling thread."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import assert_close, compile_and_load, run_ort

F = TensorProto.FLOAT


def model():
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["g"]),
        helper.make_node("Concat", ["g", "x"], ["c"], axis=1),
        helper.make_node("MaxPool", ["c"], ["p1"], kernel_shape=[3, 3], strides=[2, 1]),  # the row kernel
        helper.make_node("MaxPool", ["x"], ["p2"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),  # its plane form
        helper.make_node("MaxPool", ["c"], ["p3"], kernel_shape=[3, 3], dilations=[2, 2]),  # the general kernel
        helper.make_node("Split", ["c"], ["a", "b"], axis=1, num_outputs=2),
        helper.make_node("Mul", ["a", "b"], ["ab"]),
        helper.make_node("Relu", ["small"], ["tiny"]),  # too small to split
    ]
    bias = np.linspace(-1, 1, 37, dtype=np.float32).reshape(1, 37, 1, 1)
    graph = helper.make_graph(
        nodes,
        "split",
        [helper.make_tensor_value_info("x", F, [1, 37, 33, 29]), helper.make_tensor_value_info("small", F, [3, 5])],
        [helper.make_tensor_value_info(n, F, None) for n in ("p1", "p2", "p3", "ab", "c", "tiny")],
        [numpy_helper.from_array(bias, "bias")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_split_kernels_match_onnxruntime(threads, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    m = model()
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal((1, 37, 33, 29)).astype(np.float32), "small": rng.standard_normal((3, 5))}
    feeds["small"] = feeds["small"].astype(np.float32)
    with compile_and_load(m, tmp_path) as compiled:
        got = compiled.run(feeds)
    source = (tmp_path / "model.c").read_text()
    split = set(re.findall(r"static void (k\d+_\w+)_task\(void \*ctx", source))
    assert {"maxpool", "concat", "split"} <= {re.sub(r"^k\d+_", "", f).split("_")[0] for f in split}, split
    assert not any("relu" in f for f in split)  # 15 elements: on the calling thread
    want = run_ort(m, feeds)
    assert_close([got[n] for n in ("p1", "p2", "p3", "ab", "c", "tiny")], want, rtol=1e-5, atol=1e-6)
