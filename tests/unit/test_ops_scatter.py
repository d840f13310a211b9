"""ScatterElements, ScatterND, Scatter and TensorScatter against onnxruntime on seeded random inputs: every
reduction, negative and duplicate indices, int32 and int64 indices, float and integer data, constant indices,
the numpy reference (constant folding); out-of-range indices are skipped; and the CUDA kernels through nvcc."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import helper, numpy_helper

from helpers import NEEDS_NVCC, assert_close, compile_cuda_strictly, run_mlcc, run_ort


def elements_indices(rng, data_shape, shape, axis, unique):
    """Indices for ScatterElements along `axis`, half of them negative; `unique` keeps each line duplicate-free."""
    extent = data_shape[axis]
    if not unique:
        at = rng.integers(0, extent, size=shape)
    else:
        lines = np.moveaxis(np.empty(shape), axis, -1).shape
        at = np.stack([rng.permutation(extent)[: shape[axis]] for _ in np.ndindex(lines[:-1])])
        at = np.moveaxis(at.reshape(lines), -1, axis)
    return np.where(rng.random(shape) < 0.5, at - extent, at)


def nd_indices(rng, data_shape, rows, q, unique):
    """`rows` index tuples into data_shape[:q], some negative; `unique` makes them distinct."""
    count = int(np.prod(data_shape[:q]))
    flat = rng.permutation(count)[:rows] if unique else rng.integers(0, count, size=rows)
    at = np.stack(np.unravel_index(flat, data_shape[:q]), axis=-1)
    return np.where(rng.random(at.shape) < 0.5, at - np.array(data_shape[:q]), at)


def values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-9, 10, size=shape).astype(dtype)


def scatter_model(op, opset, data, indices, updates, given=("data", "indices", "updates"), **attrs):
    """A one-node model; the tensors not named in `given` are initializers (constants)."""
    tensors = {"data": data, "indices": indices, "updates": updates}
    node = helper.make_node(op, list(tensors), ["y"], **attrs)
    info = lambda name, a: helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)  # noqa: E731
    graph = helper.make_graph(
        [node],
        op.lower(),
        [info(k, v) for k, v in tensors.items() if k in given],
        [info("y", data)],
        [numpy_helper.from_array(v, k) for k, v in tensors.items() if k not in given],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model, {k: v for k, v in tensors.items() if k in given}


def elements_case(op, opset, data_shape, shape, axis, dtype, index_dtype, reduction="none", seed=0, **kw):
    rng = np.random.default_rng(seed)
    attrs = {"axis": axis} | ({"reduction": reduction} if reduction != "none" else {})
    at = elements_indices(rng, data_shape, shape, axis % len(data_shape), reduction == "none")
    data, updates = values(rng, data_shape, dtype), values(rng, shape, dtype)
    return scatter_model(op, opset, data, at.astype(index_dtype), updates, **kw, **attrs)


def nd_case(opset, data_shape, rows, q, dtype, reduction="none", seed=0, **kw):
    """ScatterND's indices are int64 (the ONNX type constraint)."""
    rng = np.random.default_rng(seed)
    attrs = {"reduction": reduction} if reduction != "none" else {}
    at = nd_indices(rng, data_shape, rows, q, reduction == "none")
    data, updates = values(rng, data_shape, dtype), values(rng, (rows, *data_shape[q:]), dtype)
    return scatter_model("ScatterND", opset, data, at.astype(np.int64), updates, **kw, **attrs)


F32, F64, I32, I64, U8 = np.float32, np.float64, np.int32, np.int64, np.uint8
CASES = {
    "elements_none_axis1": lambda: elements_case("ScatterElements", 18, (4, 5, 6), (3, 4, 5), 1, F32, I64),
    "elements_none_int32": lambda: elements_case("ScatterElements", 13, (6, 3), (4, 3), 0, I32, I32, seed=1),
    "elements_add_duplicates": lambda: elements_case("ScatterElements", 18, (3, 7), (3, 12), -1, F32, I32, "add"),
    "elements_add_int64_opset16": lambda: elements_case("ScatterElements", 16, (5, 4), (9, 2), 0, I64, I64, "add"),
    "elements_mul": lambda: elements_case("ScatterElements", 18, (2, 6, 3), (2, 8, 3), 1, F64, I64, "mul", seed=2),
    "elements_mul_uint8": lambda: elements_case("ScatterElements", 16, (4, 4), (4, 6), 1, U8, I32, "mul", seed=3),
    "elements_max": lambda: elements_case("ScatterElements", 18, (8,), (20,), 0, F32, I64, "max", seed=4),
    "elements_max_int32": lambda: elements_case("ScatterElements", 18, (3, 5), (3, 9), 1, I32, I32, "max", seed=5),
    "elements_min": lambda: elements_case("ScatterElements", 18, (4, 3, 2), (7, 3, 2), 0, F32, I32, "min", seed=6),
    "elements_min_int64": lambda: elements_case("ScatterElements", 18, (6, 2), (6, 2), -2, I64, I64, "min", seed=7),
    "elements_constant_indices": lambda: elements_case(
        "ScatterElements", 18, (5, 6), (5, 3), 1, F32, I64, "add", seed=8, given=("data", "updates")
    ),
    "elements_folded_at_compile_time": lambda: elements_case(
        "ScatterElements", 18, (5, 6), (4, 6), 0, F32, I32, "mul", seed=9, given=()
    ),
    "scatter_opset9": lambda: elements_case("Scatter", 9, (4, 5), (2, 5), 0, F32, I64, seed=10),
    "scatter_opset10_int32": lambda: elements_case("Scatter", 10, (3, 6), (3, 4), -1, I32, I32, seed=11),
    "nd_none_slices": lambda: nd_case(18, (5, 4, 3), 3, 1, F32),
    "nd_none_elements_int32_data": lambda: nd_case(11, (4, 5, 6), 9, 3, I32, seed=12),
    "nd_add_duplicates": lambda: nd_case(18, (4, 3, 5), 10, 2, F32, "add", seed=13),
    "nd_add_int64_opset16": lambda: nd_case(16, (3, 4), 7, 1, I64, "add", seed=14),
    "nd_mul": lambda: nd_case(18, (3, 3, 2), 6, 2, F64, "mul", seed=15),
    "nd_max": lambda: nd_case(18, (4, 4), 12, 2, F32, "max", seed=16),
    "nd_max_int32": lambda: nd_case(18, (5, 2, 3), 8, 1, I32, "max", seed=17),
    "nd_min": lambda: nd_case(18, (6, 3), 9, 1, F32, "min", seed=18),
    "nd_min_constant_indices": lambda: nd_case(18, (3, 4, 2), 6, 2, I32, "min", seed=19, given=("data", "updates")),
    "nd_folded_at_compile_time": lambda: nd_case(18, (4, 5), 6, 1, F32, "add", seed=20, given=()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scatter_matches_onnxruntime(name, tmp_path):
    model, feeds = CASES[name]()
    assert_close(run_mlcc(model, feeds, tmp_path / "out"), run_ort(model, feeds), rtol=1e-6, atol=1e-6)


def test_out_of_range_indices_are_skipped(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    updates = np.full((3, 2), -1, np.float32)
    at = np.array([[0, 4], [-5, 1], [9, -1]], np.int64)  # 4, -5 and 9 are out of range for an axis of 4
    model, feeds = scatter_model("ScatterElements", 18, data, at, updates, axis=1, reduction="add")
    (got,) = run_mlcc(model, feeds, tmp_path / "elements")
    want = data.copy()
    want[0, 0] -= 1
    want[1, 1] -= 1
    want[2, 3] -= 1
    np.testing.assert_array_equal(got, want)

    rows = np.array([[0, 1], [3, 0], [-1, -4], [2, -5]], np.int64)  # [3, 0] and [2, -5] are out of range
    model, feeds = scatter_model("ScatterND", 18, data, rows, np.array([7, 8, 9, 10], np.float32))
    (got,) = run_mlcc(model, feeds, tmp_path / "nd")
    want = data.copy()
    want[0, 1], want[2, 0] = 7, 9
    np.testing.assert_array_equal(got, want)


def tensor_scatter_model(mode):
    rng = np.random.default_rng(21)
    past = rng.standard_normal((3, 2, 6, 4)).astype(np.float32)
    update = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    writes = np.array([0, 2, 5], np.int64)
    node = helper.make_node("TensorScatter", ["past", "update", "writes"], ["present"], mode=mode)
    info = lambda name, a: helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)  # noqa: E731
    graph = helper.make_graph(
        [node],
        "tensor_scatter",
        [info("past", past), info("update", update), info("writes", writes)],
        [info("present", past)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    return model, {"past": past, "update": update, "writes": writes}


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter_matches_numpy(mode, tmp_path):
    model, feeds = tensor_scatter_model(mode)
    past, update, writes = feeds["past"], feeds["update"], feeds["writes"]
    (got,) = run_mlcc(model, feeds, tmp_path / "out")
    want = past.copy()
    for b, start in enumerate(writes):
        for s in range(update.shape[2]):
            at = (start + s) % 6 if mode == "circular" else start + s
            if at < 6:
                want[b, :, at] = update[b, :, s]
    np.testing.assert_array_equal(got, want)


@NEEDS_NVCC
def test_scatter_cuda_kernels_compile(tmp_path):
    nodes, inputs, outputs, inits = [], [], [], []
    runtime = [name for name in sorted(CASES) if "folded" not in name and not name.startswith("scatter_opset")]
    models = [CASES[name]()[0] for name in runtime] + [tensor_scatter_model("circular")[0]]
    for i, model in enumerate(models):
        graph = model.graph
        for v in [*graph.input, *graph.output, *graph.initializer]:
            v.name = f"{v.name}{i}"
        graph.node[0].input[:] = [f"{v}{i}" for v in graph.node[0].input]
        graph.node[0].output[:] = [f"{v}{i}" for v in graph.node[0].output]
        nodes += graph.node
        inputs += graph.input
        outputs += graph.output
        inits += graph.initializer
    model = helper.make_model(
        helper.make_graph(nodes, "scatters", inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 24)]
    )
    source, _ = compile_cuda_strictly(model, tmp_path)
    kernels = re.findall(r"__global__ void __launch_bounds__\(256\) (\w+)\(", source)
    assert len([k for k in kernels if "scatter" in k and not k.endswith("_copy")]) == len(models)
