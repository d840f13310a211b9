"""CumSum, CumProd, TopK, Hardmax and LpPool against onnxruntime on seeded random inputs: exclusive/reverse,
negative axes, k, largest, sorted, Hardmax's axis before and from opset 13, LpPool's p with pads, strides,
dilations and ceil_mode; the numpy references (constant folding); the generated C under -Wall -Wextra -Werror
and the generated CUDA through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import NEEDS_NVCC, assert_close, build_c_strictly, compile_cuda_strictly, run_mlcc, run_ort

FLOAT, DOUBLE, INT32, INT64, UINT8 = (
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
)


def random(shape, elem: int, seed: int, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    if ties:  # few distinct values: equal elements along every line
        return rng.integers(0, 4, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-5 if np.dtype(dtype).kind == "i" else 0, 6, size=shape).astype(dtype)


def single(
    op: str, opset: int, x: np.ndarray, elem: int, consts: dict, outs: list[tuple[str, int]], fold=False, **attrs
):
    """A one-node model over X and the constant inputs `consts` (name -> array; "" for an absent input)."""
    names = ["X", *consts]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if k]
    if fold:
        inits.append(numpy_helper.from_array(x, "X"))
    node = helper.make_node(op, names, [o for o, _ in outs], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [] if fold else [helper.make_tensor_value_info("X", elem, x.shape)],
        [helper.make_tensor_value_info(o, t, None) for o, t in outs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def check(model: onnx.ModelProto, feeds: dict, tmp_path, rtol=1e-5, atol=1e-6) -> None:
    assert_close(run_mlcc(model, feeds, tmp_path / "out"), run_ort(model, feeds), rtol=rtol, atol=atol)


# (op, opset, shape, axis, element type, attributes)
CUMULATIVE = {
    "cumsum_last_axis": ("CumSum", 14, (3, 7), np.int64(1), FLOAT, {}),
    "cumsum_exclusive": ("CumSum", 14, (3, 7), np.int64(1), FLOAT, {"exclusive": 1}),
    "cumsum_reverse_middle_axis": ("CumSum", 14, (2, 5, 3), np.int64(1), DOUBLE, {"reverse": 1}),
    "cumsum_reverse_exclusive_negative_axis": (
        "CumSum",
        14,
        (2, 5, 3),
        np.int32(-3),
        FLOAT,
        {"exclusive": 1, "reverse": 1},
    ),
    "cumsum_int32_opset11": ("CumSum", 11, (4, 6), np.int32(0), INT32, {}),
    "cumsum_int64_exclusive_reverse": ("CumSum", 14, (4, 6), np.int64(-1), INT64, {"exclusive": 1, "reverse": 1}),
    "cumprod_last_axis": ("CumProd", 26, (3, 6), np.int64(-1), FLOAT, {}),
    "cumprod_exclusive_first_axis": ("CumProd", 26, (4, 3, 2), np.int64(0), DOUBLE, {"exclusive": 1}),
    "cumprod_reverse_int64": ("CumProd", 26, (3, 5), np.int64(1), INT64, {"reverse": 1}),
    "cumprod_int32_reverse_exclusive": ("CumProd", 26, (2, 3, 4), np.int32(1), INT32, {"exclusive": 1, "reverse": 1}),
}


@pytest.mark.parametrize("name", sorted(CUMULATIVE))
def test_cumulative_matches_onnxruntime(name, tmp_path):
    op, opset, shape, axis, elem, attrs = CUMULATIVE[name]
    x = random(shape, elem, seed=len(name))
    model = single(op, opset, x, elem, {"axis": np.array(axis)}, [("Y", elem)], **attrs)
    check(model, {"X": x}, tmp_path)


def test_cumsum_wraps_like_the_element_type(tmp_path):
    x = np.array([2**31 - 1, 1, 5, -(2**31), -3], np.int32)
    model = single("CumSum", 14, x, INT32, {"axis": np.array(0, np.int64)}, [("Y", INT32)])
    (got,) = run_mlcc(model, {"X": x}, tmp_path / "out")
    np.testing.assert_array_equal(got, np.cumsum(x, dtype=np.int32))


# (opset, shape, k, element type, ties, attributes)
TOPK = {
    "opset1_k_attribute": (1, (3, 8), 3, FLOAT, False, {"k": 3}),
    "opset10_k_input_axis0": (10, (6, 4), 2, FLOAT, False, {"axis": 0}),
    "largest_middle_axis": (11, (2, 7, 3), 4, FLOAT, False, {"axis": 1}),
    "smallest_negative_axis": (11, (2, 3, 9), 5, DOUBLE, False, {"axis": -1, "largest": 0}),
    "smallest_sorted_int32": (11, (4, 6), 6, INT32, False, {"largest": 0, "sorted": 1}),
    "ties_largest_int64": (11, (5, 10), 6, INT64, True, {"axis": 1}),
    "ties_smallest_int64": (11, (10, 5), 7, INT64, True, {"axis": 0, "largest": 0}),
    "uint8_k1": (11, (3, 5), 1, UINT8, False, {}),
}


@pytest.mark.parametrize("name", sorted(TOPK))
def test_topk_matches_onnxruntime(name, tmp_path):
    opset, shape, k, elem, ties, attrs = TOPK[name]
    x = random(shape, elem, seed=len(name), ties=ties)
    consts = {} if opset < 10 else {"K": np.array([k], np.int64)}
    model = single("TopK", opset, x, elem, consts, [("Values", elem), ("Indices", INT64)], **attrs)
    check(model, {"X": x}, tmp_path)


def test_topk_ranks_nan_above_every_number(tmp_path):
    x = np.array([[1.0, np.nan, 3.0, np.nan, -np.inf, 2.0]], np.float32)
    got = {}
    for largest in (1, 0):
        model = single(
            "TopK", 11, x, FLOAT, {"K": np.array([3], np.int64)}, [("V", FLOAT), ("I", INT64)], largest=largest
        )
        got[largest] = run_mlcc(model, {"X": x}, tmp_path / f"out{largest}")
    np.testing.assert_array_equal(got[1][1], [[1, 3, 2]])
    np.testing.assert_array_equal(got[0][1], [[4, 0, 5]])


# (opset, shape, attributes): before opset 13 a line is the input flattened from axis on
HARDMAX = {
    "opset11_default_axis": (11, (3, 4, 5), {}),
    "opset11_axis0": (11, (3, 4, 5), {"axis": 0}),
    "opset11_axis2": (11, (3, 4, 5), {"axis": 2}),
    "opset13_default_axis": (13, (3, 4, 5), {}),
    "opset13_axis0": (13, (3, 4, 5), {"axis": 0}),
    "opset13_axis1": (13, (3, 4, 5), {"axis": 1}),
    "opset13_negative_axis": (13, (2, 6, 3), {"axis": -2}),
}


@pytest.mark.parametrize("name", sorted(HARDMAX))
def test_hardmax_matches_onnxruntime(name, tmp_path):
    opset, shape, attrs = HARDMAX[name]
    x = random(shape, FLOAT, seed=len(name))
    check(single("Hardmax", opset, x, FLOAT, {}, [("Y", FLOAT)], **attrs), {"X": x}, tmp_path)


def test_hardmax_first_maximum_wins(tmp_path):
    x = np.array([[2, 5, 5, 1], [7, 7, 7, 7]], np.float32)
    (got,) = run_mlcc(single("Hardmax", 13, x, FLOAT, {}, [("Y", FLOAT)]), {"X": x}, tmp_path / "out")
    np.testing.assert_array_equal(got, [[0, 1, 0, 0], [1, 0, 0, 0]])


# (opset, input shape, attributes)
LPPOOL = {
    "p1_1d_strides": (11, (2, 3, 11), {"p": 1, "kernel_shape": [3], "strides": [2]}),
    "p2_default_2d": (11, (1, 2, 6, 7), {"kernel_shape": [2, 3]}),
    "p2_pads_strides_2d": (11, (2, 3, 9, 8), {"p": 2, "kernel_shape": [3, 3], "pads": [1, 2, 1, 0], "strides": [2, 2]}),
    "p3_pads_2d": (11, (1, 2, 7, 7), {"p": 3, "kernel_shape": [3, 2], "pads": [2, 1, 2, 1]}),
    "p3_same_upper_3d": (11, (1, 2, 5, 4, 6), {"p": 3, "kernel_shape": [2, 3, 2], "auto_pad": "SAME_UPPER"}),
    "p2_same_lower_strides": (11, (1, 1, 9, 9), {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    "p2_dilations_opset18": (18, (1, 2, 9, 9), {"kernel_shape": [2, 3], "dilations": [2, 2], "strides": [1, 2]}),
    "p3_ceil_mode_opset18": (
        18,
        (1, 2, 10, 9),
        {"p": 3, "kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0], "ceil_mode": 1},
    ),
    "p1_opset2": (2, (2, 2, 8), {"p": 1, "kernel_shape": [4], "strides": [3], "pads": [1, 1]}),
}


@pytest.mark.parametrize("name", sorted(LPPOOL))
def test_lppool_matches_onnxruntime(name, tmp_path):
    opset, shape, attrs = LPPOOL[name]
    x = random(shape, FLOAT, seed=len(name))
    check(single("LpPool", opset, x, FLOAT, {}, [("Y", FLOAT)], **attrs), {"X": x}, tmp_path, rtol=1e-4, atol=1e-5)


def test_invalid_k_and_axis_are_reported(tmp_path):
    x = random((3, 4), FLOAT, seed=1)
    too_many = single("TopK", 11, x, FLOAT, {"K": np.array([5], np.int64)}, [("V", FLOAT), ("I", INT64)])
    with pytest.raises(mlcc.MlccError, match="k = 5"):
        mlcc.compile(too_many, out_dir=tmp_path / "k", build=False)
    bad_axis = single("CumSum", 14, x, FLOAT, {"axis": np.array(2, np.int64)}, [("Y", FLOAT)])
    with pytest.raises(mlcc.MlccError, match="axis 2 is out of range"):
        mlcc.compile(bad_axis, out_dir=tmp_path / "axis", build=False)


def folded_models() -> list[onnx.ModelProto]:
    """Every op once on a constant input: the whole node folds to its numpy reference at compile time."""
    x = random((3, 6), FLOAT, seed=7)
    axis = {"axis": np.array(-1, np.int64)}
    return [
        single("CumSum", 14, x, FLOAT, axis, [("Y", FLOAT)], fold=True, exclusive=1, reverse=1),
        single("CumProd", 26, x, FLOAT, axis, [("Y", FLOAT)], fold=True, exclusive=1),
        single(
            "TopK", 11, x, FLOAT, {"K": np.array([4], np.int64)}, [("V", FLOAT), ("I", INT64)], fold=True, largest=0
        ),
        single("Hardmax", 11, x, FLOAT, {}, [("Y", FLOAT)], fold=True, axis=0),
        single(
            "LpPool", 11, x.reshape(1, 3, 6), FLOAT, {}, [("Y", FLOAT)], fold=True, p=3, kernel_shape=[3], pads=[1, 1]
        ),
    ]


@pytest.mark.parametrize("index", range(5))
def test_folded_reference_matches_onnxruntime(index, tmp_path):
    model = folded_models()[index]
    check(model, {}, tmp_path, rtol=1e-5, atol=1e-6)
    source = (tmp_path / "out" / "model.c").read_text()
    assert not any(f"_{op}(" in source for op in ("cumsum", "cumprod", "topk", "hardmax", "lppool")), "not folded"


def all_ops_model() -> onnx.ModelProto:
    """One model with every op and the interesting kernel variants, for the strict compile checks."""
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("CumSum", ["x", "ax1"], ["cs"], exclusive=1, reverse=1),
        helper.make_node("CumProd", ["x", "axm1"], ["cp"]),
        helper.make_node("Cast", ["x"], ["xi"], to=INT32),
        helper.make_node("CumSum", ["xi", "ax1"], ["csi"], reverse=1),
        helper.make_node("TopK", ["x", "k"], ["tv", "ti"], axis=1, largest=0),
        helper.make_node("TopK", ["xi", "k"], ["tvi", "tii"], axis=-1),
        helper.make_node("Hardmax", ["x"], ["hm"], axis=1),
        helper.make_node("LpPool", ["x"], ["lp"], p=3, kernel_shape=[3, 2], pads=[1, 0, 1, 1], strides=[2, 1]),
        helper.make_node("LpPool", ["x"], ["lp2"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
    ]
    outs = ["cs", "cp", "csi", "tv", "ti", "tvi", "tii", "hm", "lp", "lp2"]
    graph = helper.make_graph(
        nodes,
        "scan_topk",
        [helper.make_tensor_value_info("x", FLOAT, [2, 5, 6, 4])],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
        [i64("ax1", 1), i64("axm1", -1), i64("k", [3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])


def test_generated_c_compiles_without_warnings(tmp_path):
    source = build_c_strictly(all_ops_model(), tmp_path)
    assert "_cumsum(" in source and "_topk(" in source and "_hardmax(" in source and "_lppool(" in source


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, ptxas = compile_cuda_strictly(all_ops_model(), tmp_path)
    assert "cudaGraphLaunch" in source and "static __global__ void" in source
    for kernel in ("cumsum", "cumprod", "topk", "hardmax", "lppool"):
        assert f"_{kernel}" in ptxas, f"ptxas compiled no {kernel} kernel"
