"""RoiAlign, DeformConv and MaxUnpool against onnxruntime (or onnx's ReferenceEvaluator where onnxruntime
differs from the node tests: RoiAlign's max mode, MaxUnpool's output_shape) on seeded random inputs: RoiAlign's
opsets 10 and 16, coordinate_transformation_mode, avg and max, adaptive sampling_ratio, bad batch indices and
malformed rois; DeformConv's groups, offset_group, mask, bias, pads, strides and dilations, offsets that leave
the image; MaxUnpool in 1-3 D with pads and strides, output_shape, out-of-range indices and a run-time
output_shape; the numpy references (constant folding); the generated C under -Wall -Wextra -Werror and the
generated CUDA through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import mlcc
from helpers import NEEDS_NVCC, assert_close, build_c_strictly, compile_cuda_strictly, run_mlcc, run_ort

FLOAT, DOUBLE, INT64 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64


def model(op: str, opset: int, inputs: dict, consts: dict | None = None, **attrs) -> onnx.ModelProto:
    """One node over graph inputs `inputs` and initializers `consts` (name -> array, in the node's input order;
    "" for an absent input), with one output Y."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    order = attrs.pop("order", names)
    info = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs.items()
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if k]
    node = helper.make_node(op, order, ["Y"], **attrs)
    elem = helper.np_dtype_to_tensor_dtype({**inputs, **consts}["X"].dtype)  # Y has X's type
    graph = helper.make_graph([node], op.lower(), info, [helper.make_tensor_value_info("Y", elem, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def reference(m: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ReferenceEvaluator(m).run(None, feeds)


def boxes(rng: np.random.Generator, count: int, lo: float, hi: float, dtype) -> np.ndarray:
    """`count` well-formed rois [x1, y1, x2, y2] with corners in [lo, hi)."""
    r = rng.uniform(lo, hi, size=(count, 4))
    return np.concatenate([np.minimum(r[:, :2], r[:, 2:]), np.maximum(r[:, :2], r[:, 2:])], axis=1).astype(dtype)


# (opset, X shape, element type, attributes); avg mode, compared with onnxruntime
ROIALIGN = {
    "opset10_defaults": (10, (2, 3, 10, 12), np.float32, {}),
    "opset10_adaptive_scaled": (
        10,
        (2, 2, 12, 9),
        np.float32,
        {"output_height": 3, "output_width": 2, "spatial_scale": 0.5},
    ),
    "opset16_half_pixel_adaptive": (16, (2, 3, 10, 12), np.float32, {"output_height": 3, "output_width": 4}),
    "opset16_output_half_pixel_ratio2": (
        16,
        (1, 2, 8, 8),
        np.float32,
        {
            "coordinate_transformation_mode": "output_half_pixel",
            "output_height": 5,
            "output_width": 5,
            "sampling_ratio": 2,
        },
    ),
    "opset16_double_ratio3": (
        16,
        (3, 2, 7, 11),
        np.float64,
        {"output_height": 4, "output_width": 3, "sampling_ratio": 3, "spatial_scale": 0.75},
    ),
}


@pytest.mark.parametrize("name", sorted(ROIALIGN))
def test_roialign_matches_onnxruntime(name, tmp_path):
    opset, shape, dtype, attrs = ROIALIGN[name]
    rng = np.random.default_rng(len(name))
    feeds = {
        "X": rng.standard_normal(shape).astype(dtype),
        "rois": boxes(rng, 6, -2.0, max(shape[2:]) + 2.0, dtype),
        "batch_indices": rng.integers(0, shape[0], size=6).astype(np.int64),
    }
    m = model("RoiAlign", opset, feeds, **attrs)
    assert_close(run_mlcc(m, feeds, tmp_path / "out"), run_ort(m, feeds), rtol=1e-4, atol=1e-5)


# max mode: onnx's reference (the node tests) takes the largest weighted corner term, onnxruntime does not
ROIALIGN_MAX = {
    "output_half_pixel_ratio2": {"coordinate_transformation_mode": "output_half_pixel", "sampling_ratio": 2},
    "half_pixel_adaptive": {"output_height": 3, "output_width": 4},
    "half_pixel_ratio1_scaled": {"sampling_ratio": 1, "spatial_scale": 0.5, "output_height": 2, "output_width": 2},
}


@pytest.mark.parametrize("name", sorted(ROIALIGN_MAX))
def test_roialign_max_matches_onnx_reference(name, tmp_path):
    rng = np.random.default_rng(len(name))
    feeds = {
        "X": rng.standard_normal((2, 3, 9, 10)).astype(np.float32),
        "rois": boxes(rng, 5, -3.0, 13.0, np.float32),
        "batch_indices": rng.integers(0, 2, size=5).astype(np.int64),
    }
    m = model("RoiAlign", 16, feeds, mode="max", **ROIALIGN_MAX[name])
    assert_close(run_mlcc(m, feeds, tmp_path / "out"), reference(m, feeds), rtol=1e-4, atol=1e-5)


def test_roialign_bad_batch_index_and_malformed_rois(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    rois = boxes(rng, 6, 0.0, 6.0, np.float32)
    rois[3] = [4.0, 5.0, 1.0, 2.0]  # negative width and height: an empty grid
    rois[4] = [np.nan, 1.0, 3.0, np.inf]
    batch = np.array([0, 1, -1, 1, 0, 2], np.int64)  # -1 and 2 name no image
    feeds = {"X": x, "rois": rois, "batch_indices": batch}
    m = model("RoiAlign", 16, feeds, output_height=2, output_width=3)
    (got,) = run_mlcc(m, feeds, tmp_path / "out")
    assert np.all(got[[2, 3, 4, 5]] == 0)
    good = {"X": x, "rois": rois[:2], "batch_indices": batch[:2]}
    np.testing.assert_allclose(
        got[:2], reference(model("RoiAlign", 16, good, output_height=2, output_width=3), good)[0], rtol=1e-5, atol=1e-6
    )


# (group, offset_group, X shape, W shape, with bias, with mask, attributes)
DEFORM = {
    "plain_3x3": (1, 1, (1, 2, 6, 7), (3, 2, 3, 3), False, False, {}),
    "pads_strides_bias": (1, 1, (2, 3, 7, 6), (4, 3, 3, 2), True, False, {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    "dilations_mask": (1, 1, (1, 2, 8, 8), (2, 2, 2, 3), False, True, {"dilations": [2, 2], "pads": [1, 1, 1, 1]}),
    "groups_offset_groups_mask_bias": (2, 2, (2, 4, 6, 6), (6, 2, 3, 3), True, True, {"pads": [1, 1, 1, 1]}),
    "offset_groups_only": (1, 4, (1, 4, 5, 6), (2, 4, 2, 2), False, True, {"strides": [1, 2]}),
    "depthwise": (3, 3, (1, 3, 6, 5), (3, 1, 3, 3), True, False, {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}),
}


@pytest.mark.parametrize("name", sorted(DEFORM))
def test_deform_conv_matches_onnxruntime_and_reference(name, tmp_path):
    group, og, xs, ws, bias, with_mask, attrs = DEFORM[name]
    rng = np.random.default_rng(len(name))
    n, _, h, w = xs
    pads, strides = attrs.get("pads", [0] * 4), attrs.get("strides", [1, 1])
    dil = attrs.get("dilations", [1, 1])
    oh = (h + pads[0] + pads[2] - (ws[2] - 1) * dil[0] - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - (ws[3] - 1) * dil[1] - 1) // strides[1] + 1
    taps = og * ws[2] * ws[3]
    feeds = {
        "X": rng.standard_normal(xs).astype(np.float32),
        "W": rng.standard_normal(ws).astype(np.float32),
        "offset": (rng.standard_normal((n, 2 * taps, oh, ow)) * 2.0).astype(np.float32),  # some leave the image
        "B": rng.standard_normal(ws[0]).astype(np.float32),
        "mask": rng.random((n, taps, oh, ow)).astype(np.float32),
    }
    if not with_mask:
        del feeds["mask"]
    if not bias:
        del feeds["B"]
    order = ["X", "W", "offset", "B" if bias else "", *(["mask"] if with_mask else [])]
    m = model("DeformConv", 19, feeds, group=group, offset_group=og, order=order, **attrs)
    got = run_mlcc(m, feeds, tmp_path / "out")
    assert_close(got, run_ort(m, feeds), rtol=1e-4, atol=1e-4)
    assert_close(got, reference(m, feeds), rtol=1e-4, atol=1e-4)


def test_deform_conv_double_opset22(tmp_path):
    rng = np.random.default_rng(22)
    feeds = {
        "X": rng.standard_normal((1, 2, 5, 5)),
        "W": rng.standard_normal((2, 2, 2, 2)),
        "offset": rng.standard_normal((1, 8, 4, 4)) * 3.0,
    }
    m = model("DeformConv", 22, feeds)
    assert_close(run_mlcc(m, feeds, tmp_path / "out"), run_ort(m, feeds), rtol=1e-10, atol=1e-10)


def test_float16_computes_in_float32(tmp_path):
    rng = np.random.default_rng(16)
    roi = {
        "X": rng.standard_normal((1, 2, 6, 6)).astype(np.float16),
        "rois": boxes(rng, 3, 0.0, 6.0, np.float16),
        "batch_indices": np.zeros(3, np.int64),
    }
    deform = {
        "X": rng.standard_normal((1, 2, 5, 5)).astype(np.float16),
        "W": rng.standard_normal((2, 2, 2, 2)).astype(np.float16),
        "offset": rng.standard_normal((1, 8, 4, 4)).astype(np.float16),
    }
    unpool = {"X": rng.standard_normal((1, 1, 2, 2)).astype(np.float16), "I": np.array([[[[0, 3], [9, 14]]]], np.int64)}
    cases = [
        (model("RoiAlign", 16, roi, output_height=2, output_width=2), roi),
        (model("DeformConv", 19, deform), deform),
        (model("MaxUnpool", 11, unpool, kernel_shape=[2, 2], strides=[2, 2]), unpool),
    ]
    for k, (m, feeds) in enumerate(cases):
        got = run_mlcc(m, feeds, tmp_path / str(k))
        assert_close(got, reference(m, feeds), rtol=1e-2, atol=1e-2)


def pooled(shape: tuple, attrs: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MaxPool's values and indices of a random input (onnxruntime), the natural input of MaxUnpool."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    node = helper.make_node("MaxPool", ["X"], ["V", "I"], **attrs)
    graph = helper.make_graph(
        [node],
        "maxpool",
        [helper.make_tensor_value_info("X", FLOAT, shape)],
        [helper.make_tensor_value_info("V", FLOAT, None), helper.make_tensor_value_info("I", INT64, None)],
    )
    return tuple(run_ort(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]), {"X": x}))


# (opset, pooled input shape, attributes)
MAXUNPOOL = {
    "opset9_1d": (9, (2, 3, 9), {"kernel_shape": [3], "strides": [3]}),
    "opset11_2d_strides": (11, (1, 2, 6, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    "opset11_2d_pads_overlap": (11, (2, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "opset22_3d": (22, (1, 2, 4, 6, 4), {"kernel_shape": [2, 3, 2], "strides": [2, 3, 2]}),
}


@pytest.mark.parametrize("name", sorted(MAXUNPOOL))
def test_maxunpool_matches_onnxruntime(name, tmp_path):
    opset, shape, attrs = MAXUNPOOL[name]
    v, i = pooled(shape, attrs, len(name))
    feeds = {"X": v, "I": i}
    m = model("MaxUnpool", opset, feeds, **attrs)
    assert_close(run_mlcc(m, feeds, tmp_path / "out"), run_ort(m, feeds), rtol=0, atol=0)


@pytest.mark.parametrize("out_shape", [(2, 2, 7, 9), (2, 2, 6, 6), (2, 2, 3, 8)])
def test_maxunpool_output_shape_matches_onnx_reference(out_shape, tmp_path):
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    v, i = pooled((2, 2, 6, 6), attrs, 3)
    feeds = {"X": v, "I": i}
    m = model("MaxUnpool", 11, feeds, {"output_shape": np.array(out_shape, np.int64)}, **attrs)
    (got,) = run_mlcc(m, feeds, tmp_path / "out")
    assert got.shape == out_shape
    unpooled = np.zeros(v.size * 4, np.float32)
    unpooled[i.reshape(-1)] = v.reshape(-1)
    want = np.zeros(out_shape, np.float32)
    rows, cols = min(6, out_shape[2]), min(6, out_shape[3])
    want[:, :, :rows, :cols] = unpooled.reshape(2, 2, 6, 6)[:, :, :rows, :cols]
    np.testing.assert_array_equal(got, want)
    if out_shape[2] >= 6 and out_shape[3] >= 6:  # onnx's reference cannot place into a smaller output
        np.testing.assert_array_equal(got, reference(m, feeds)[0])


def test_maxunpool_skips_out_of_range_indices(tmp_path):
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 2, 2, 2)
    idx = np.array([0, 15, 16, -1, 17, 2**40, 31, 5], np.int64).reshape(1, 2, 2, 2)  # the unpooled tensor has 32
    feeds = {"X": x, "I": idx}
    for shape in (None, (1, 2, 3, 3)):
        consts = {} if shape is None else {"output_shape": np.array(shape, np.int64)}
        m = model("MaxUnpool", 11, feeds, consts, kernel_shape=[2, 2], strides=[2, 2])
        (got,) = run_mlcc(m, feeds, tmp_path / f"out{shape is None}")
        want = np.zeros(32, np.float32)
        want[[0, 15, 16, 17, 31, 5]] = [1, 2, 3, 5, 7, 8]
        want = want.reshape(1, 2, 4, 4)
        if shape is not None:
            want = want[:, :, :3, :3]
        np.testing.assert_array_equal(got, want)


def test_maxunpool_runtime_output_shape_is_reported(tmp_path):
    feeds = {"X": np.zeros((1, 1, 2, 2), np.float32), "I": np.zeros((1, 1, 2, 2), np.int64)}
    m = model("MaxUnpool", 11, {**feeds, "output_shape": np.array([1, 1, 5, 5], np.int64)}, kernel_shape=[2, 2])
    with pytest.raises(mlcc.MlccError, match="output_shape.*must be known at compile time"):
        mlcc.compile(m, out_dir=tmp_path, build=False)


def test_invalid_attributes_are_reported(tmp_path):
    x = np.zeros((1, 2, 5, 5), np.float32)
    bad = [
        (
            model(
                "RoiAlign", 16, {"X": x, "rois": np.zeros((3, 4), np.float32), "batch_indices": np.zeros(2, np.int64)}
            ),
            "num_rois",
        ),
        (
            model(
                "RoiAlign",
                16,
                {"X": x, "rois": np.zeros((3, 4), np.float32), "batch_indices": np.zeros(3, np.int64)},
                mode="sum",
            ),
            "mode",
        ),
        (
            model(
                "DeformConv",
                19,
                {"X": x, "W": np.zeros((2, 2, 3, 3), np.float32), "offset": np.zeros((1, 16, 3, 3), np.float32)},
            ),
            "offset",
        ),
        (
            model(
                "DeformConv",
                19,
                {"X": x, "W": np.zeros((2, 1, 3, 3), np.float32), "offset": np.zeros((1, 18, 3, 3), np.float32)},
            ),
            "group",
        ),
        (model("MaxUnpool", 11, {"X": x, "I": np.zeros((1, 2, 5, 5), np.int64)}), "kernel_shape"),
    ]
    for k, (m, message) in enumerate(bad):
        with pytest.raises(mlcc.MlccError, match=message):
            mlcc.compile(m, out_dir=tmp_path / str(k), build=False)


def folded_models() -> list[tuple[onnx.ModelProto, bool]]:
    """Each op on constant inputs, so the node folds to its numpy reference; (model, compare with onnxruntime)."""
    rng = np.random.default_rng(11)
    roi = {
        "X": rng.standard_normal((2, 2, 6, 7)).astype(np.float32),
        "rois": boxes(rng, 4, -1.0, 8.0, np.float32),
        "batch_indices": np.array([0, 1, 1, 0], np.int64),
    }
    deform = {
        "X": rng.standard_normal((1, 4, 5, 5)).astype(np.float32),
        "W": rng.standard_normal((4, 2, 2, 2)).astype(np.float32),
        "offset": (rng.standard_normal((1, 16, 4, 4)) * 2).astype(np.float32),
        "B": rng.standard_normal(4).astype(np.float32),
        "mask": rng.random((1, 8, 4, 4)).astype(np.float32),
    }
    v, i = pooled((1, 2, 4, 6), {"kernel_shape": [2, 2], "strides": [2, 2]}, 4)
    return [
        (model("RoiAlign", 16, {}, roi, output_height=2, output_width=3), True),
        (model("RoiAlign", 16, {}, roi, mode="max", sampling_ratio=2), False),
        (model("RoiAlign", 10, {}, roi, spatial_scale=0.5), True),
        (model("DeformConv", 19, {}, deform, group=2, offset_group=2), True),
        (model("MaxUnpool", 11, {}, {"X": v, "I": i}, kernel_shape=[2, 2], strides=[2, 2]), True),
        (
            model(
                "MaxUnpool",
                11,
                {},
                {"X": v, "I": i, "output_shape": np.array([1, 2, 5, 7], np.int64)},
                kernel_shape=[2, 2],
                strides=[2, 2],
            ),
            False,
        ),
    ]


@pytest.mark.parametrize("index", range(6))
def test_folded_reference_matches(index, tmp_path):
    m, ort = folded_models()[index]
    got = run_mlcc(m, {}, tmp_path / "out")
    assert_close(got, run_ort(m, {}) if ort else reference(m, {}), rtol=1e-4, atol=1e-5)
    source = (tmp_path / "out" / "model.c").read_text()
    assert not any(f"_{op}(" in source for op in ("roialign", "deform_conv", "scatter", "maxunpool")), "not folded"


def all_ops_model() -> onnx.ModelProto:
    """Every op and the interesting kernel variants in one model, for the strict compile checks."""
    rng = np.random.default_rng(0)
    f32 = lambda name, shape: numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)  # noqa: E731
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("RoiAlign", ["x", "rois", "bi"], ["ra"], output_height=2, output_width=3),
        helper.make_node(
            "RoiAlign",
            ["x", "rois", "bi"],
            ["rm"],
            mode="max",
            sampling_ratio=2,
            coordinate_transformation_mode="output_half_pixel",
        ),  # fmt: skip
        helper.make_node("Cast", ["x"], ["xd"], to=DOUBLE),
        helper.make_node("Cast", ["rois"], ["roisd"], to=DOUBLE),
        helper.make_node("RoiAlign", ["xd", "roisd", "bi"], ["rd"]),
        helper.make_node(
            "DeformConv", ["x", "w", "off", "b", "mask"], ["dc"], group=2, offset_group=2, pads=[1, 1, 1, 1]
        ),
        helper.make_node("DeformConv", ["x", "w1", "off1"], ["dc1"], strides=[2, 2], dilations=[1, 2]),
        helper.make_node("MaxPool", ["x"], ["mp", "mi"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxUnpool", ["mp", "mi"], ["mu"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxUnpool", ["mp", "mi", "osh"], ["mo"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    outs = ["ra", "rm", "rd", "dc", "dc1", "mu", "mo"]
    graph = helper.make_graph(
        nodes,
        "roi_deform_unpool",
        [
            helper.make_tensor_value_info("x", FLOAT, [2, 4, 6, 6]),
            helper.make_tensor_value_info("rois", FLOAT, [3, 4]),
            helper.make_tensor_value_info("bi", INT64, [3]),
        ],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
        [
            f32("w", (6, 2, 3, 3)),
            f32("off", (2, 36, 6, 6)),
            f32("b", (6,)),
            f32("mask", (2, 18, 6, 6)),
            f32("w1", (3, 4, 2, 2)),
            f32("off1", (2, 8, 3, 2)),
            i64("osh", [2, 4, 5, 7]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])


def test_generated_c_compiles_without_warnings(tmp_path):
    source = build_c_strictly(all_ops_model(), tmp_path)
    assert "_roialign(" in source and "_deform_conv(" in source and "_maxunpool(" in source


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, ptxas = compile_cuda_strictly(all_ops_model(), tmp_path)
    assert "cudaGraphLaunch" in source and "static __global__ void" in source
    for kernel in ("roialign", "deform_conv", "maxunpool"):
        assert f"_{kernel}" in ptxas, f"ptxas compiled no {kernel} kernel"
