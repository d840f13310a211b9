"""GridSample, AffineGrid, ReverseSequence and Col2Im against onnxruntime: every GridSample mode, padding mode
and align_corners on grids reaching outside [-1, 1]; the numpy references (constant folding) too; the
generated C with -Wall -Wextra -Werror; and the CUDA kernels through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import mlcc
from helpers import NEEDS_NVCC, assert_close, build_c_strictly, compile_cuda_strictly, run_mlcc, run_ort

FLOAT = TensorProto.FLOAT


def one_node(
    node: onnx.NodeProto, feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray], opset: int, fold: bool = False
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A model of `node` with `feeds` as graph inputs (initializers too where `fold`) and `consts` as initializers."""
    inits = {**consts, **(feeds if fold else {})}
    inputs = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for k, v in feeds.items()
        if not fold
    ]
    graph = helper.make_graph(
        [node],
        node.op_type.lower(),
        inputs,
        [helper.make_tensor_value_info(o, FLOAT, None) for o in node.output],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model, ({} if fold else feeds)


def check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], tmp_path, rtol=1e-4, atol=1e-5) -> None:
    assert_close(run_mlcc(model, feeds, tmp_path), run_ort(model, feeds), rtol=rtol, atol=atol)


def grid_sample(mode: str, padding: str, align: int, opset: int = 20, fold: bool = False):
    rng = np.random.default_rng(len(mode) * 7 + len(padding) + align)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = rng.uniform(-1.7, 1.7, (2, 4, 7, 2)).astype(np.float32)  # about a third of it outside [-1, 1]
    node = helper.make_node("GridSample", ["X", "grid"], ["Y"], mode=mode, padding_mode=padding, align_corners=align)
    return one_node(node, {"X": x, "grid": grid}, {}, opset, fold)


@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
def test_grid_sample_2d(mode, padding, align, tmp_path):
    check(*grid_sample(mode, padding, align), tmp_path)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_grid_sample_opset16_names(mode, tmp_path):
    check(*grid_sample(mode, "reflection", 0, opset=16), tmp_path)


@pytest.mark.parametrize(
    "mode, padding, align", [("linear", "zeros", 0), ("nearest", "reflection", 1), ("cubic", "border", 1)]
)
def test_grid_sample_reference_folds(mode, padding, align, tmp_path):
    model, feeds = grid_sample(mode, padding, align, fold=True)
    mlcc.compile(model, out_dir=tmp_path / "src", build=False)
    assert "gridsample" not in (tmp_path / "src" / "model.c").read_text()
    check(model, feeds, tmp_path / "run")


def test_grid_sample_rejects_grid_of_wrong_shape(tmp_path):
    node = helper.make_node("GridSample", ["X", "grid"], ["Y"])
    feeds = {"X": np.zeros((1, 1, 4, 4), np.float32), "grid": np.zeros((1, 3, 3, 3), np.float32)}
    with pytest.raises(mlcc.errors.ShapeError, match="grid"):
        mlcc.compile(one_node(node, feeds, {}, 20)[0], out_dir=tmp_path, build=False)


def affine_grid(size: list[int], align: int, fold: bool = False):
    k = len(size) - 2
    rng = np.random.default_rng(k + align)
    theta = (np.eye(k, k + 1) + 0.3 * rng.standard_normal((size[0], k, k + 1))).astype(np.float32)
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=align)
    return one_node(node, {"theta": theta}, {"size": np.array(size, np.int64)}, 20, fold)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # onnx's reference on a one-element axis
@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("size", [[2, 3, 4, 5], [2, 1, 3, 4, 5], [1, 1, 1, 3]], ids=["2d", "3d", "2d-unit"])
def test_affine_grid(size, align, fold, tmp_path):
    model, feeds = affine_grid(size, align, fold)
    if align and 1 in size[2:]:
        # A one-element axis with align_corners has no defined coordinate: onnx's reference gives -1 (mlcc
        # follows it), onnxruntime 1 and PyTorch 0.
        want = ReferenceEvaluator(model).run(None, feeds)
        assert_close(run_mlcc(model, feeds, tmp_path), want)
    else:
        check(model, feeds, tmp_path)


def reverse_sequence(batch_axis: int, fold: bool = False):
    rng = np.random.default_rng(batch_axis)
    shape = (4, 5, 3) if batch_axis == 0 else (5, 4, 3)
    x = rng.standard_normal(shape).astype(np.float32)
    lens = np.array([5, 1, 3, 0], np.int64)
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=batch_axis, time_axis=1 - batch_axis)
    return one_node(node, {"x": x, "lens": lens}, {}, 10, fold)


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("batch_axis", [0, 1])
def test_reverse_sequence(batch_axis, fold, tmp_path):
    check(*reverse_sequence(batch_axis, fold), tmp_path)


def col2im(image, block, fold=False, **attrs):
    k = len(block)
    pads, strides, dil = attrs.get("pads", [0] * 2 * k), attrs.get("strides", [1] * k), attrs.get("dilations", [1] * k)
    blocks = [
        (i + pads[a] + pads[a + k] - d * (b - 1) - 1) // s + 1
        for a, (i, b, s, d) in enumerate(zip(image, block, strides, dil))
    ]
    rng = np.random.default_rng(sum(image) + sum(block))
    x = rng.standard_normal((2, 3 * int(np.prod(block)), int(np.prod(blocks)))).astype(np.float32)
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    consts = {"image": np.array(image, np.int64), "block": np.array(block, np.int64)}
    return one_node(node, {"x": x}, consts, 18, fold)


COL2IM = {
    "plain": ([5, 5], [2, 2], {}),
    "pads": ([5, 6], [3, 2], {"pads": [1, 0, 2, 1]}),
    "strides": ([7, 8], [3, 2], {"strides": [2, 3]}),
    "dilations": ([7, 6], [2, 3], {"dilations": [3, 2]}),
    "all": ([9, 8], [3, 2], {"pads": [1, 2, 0, 1], "strides": [2, 2], "dilations": [2, 3]}),
}


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("case", sorted(COL2IM))
def test_col2im(case, fold, tmp_path):
    image, block, attrs = COL2IM[case]
    check(*col2im(image, block, fold, **attrs), tmp_path)


def sampling_mix() -> onnx.ModelProto:
    """AffineGrid -> GridSample (each mode and padding), ReverseSequence and Col2Im in one model."""
    nodes = [helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=0)]
    outputs = []
    for mode, padding in [("linear", "zeros"), ("nearest", "border"), ("cubic", "reflection")]:
        name = f"{mode}_{padding}"
        nodes.append(helper.make_node("GridSample", ["x", "grid"], [name], mode=mode, padding_mode=padding))
        outputs.append(helper.make_tensor_value_info(name, FLOAT, None))
    nodes.append(helper.make_node("ReverseSequence", ["x2", "lens"], ["rev"], batch_axis=0, time_axis=1))
    nodes.append(helper.make_node("Col2Im", ["cols", "image", "block"], ["im"], pads=[1, 1, 0, 0], strides=[2, 1]))
    i64 = lambda v, n: numpy_helper.from_array(np.array(v, np.int64), n)  # noqa: E731
    graph = helper.make_graph(
        nodes,
        "sampling",
        [
            helper.make_tensor_value_info("x", FLOAT, [2, 3, 6, 7]),
            helper.make_tensor_value_info("theta", FLOAT, [2, 2, 3]),
            helper.make_tensor_value_info("x2", FLOAT, [2, 4, 3]),
            helper.make_tensor_value_info("lens", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("cols", FLOAT, [1, 8, 12]),
        ],
        outputs + [helper.make_tensor_value_info(n, FLOAT, None) for n in ("rev", "im")],
        [i64([2, 3, 5, 4], "size"), i64([5, 4], "image"), i64([2, 2], "block")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_generated_c_compiles_without_warnings(tmp_path):
    build_c_strictly(sampling_mix(), tmp_path)


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, _ = compile_cuda_strictly(sampling_mix(), tmp_path)
    assert "static __global__ void" in source and "gridsample" in source and "col2im" in source
