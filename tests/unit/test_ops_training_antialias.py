"""The ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum standard and nesterov) against onnx's
ReferenceEvaluator (onnxruntime's CPU build has none of them): every attribute, several tensors per node, T = 0
and T > 0, float and double, R and T at run time or constant, fewer declared outputs, the numpy references
(constant folding). Resize with antialias=1 (linear and cubic, shrinking and growing axes, every coordinate
transformation, exclude_outside, cubic_coeff_a, sizes and scales, axes, uint8) against onnxruntime and the
ReferenceEvaluator. Then the generated C under -Wall -Wextra -Werror and the generated CUDA through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import mlcc
from helpers import NEEDS_NVCC, assert_close, build_c_strictly, compile_cuda_strictly, run_mlcc, run_ort

FLOAT, DOUBLE, INT64, UINT8 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.UINT8
TRAINING = "ai.onnx.preview.training"


# ---------------------------------------------------------------------------------------------- optimizers

STATES = {"Adagrad": (("X", "G", "H"), ("X", "H")), "Adam": (("X", "G", "V", "H"), ("X", "V", "H"))}
STATES["Momentum"] = (("X", "G", "V"), ("X", "V"))


def optimizer_model(
    op: str,
    shapes: list[tuple[int, ...]],
    elem: int = FLOAT,
    r_elem: int = FLOAT,
    consts: dict | None = None,
    outputs: int | None = None,
    **attrs,
) -> onnx.ModelProto:
    """One optimizer node over len(shapes) tensors; `consts` (name -> array) become initializers."""
    states_in, states_out = STATES[op]
    n, consts = len(shapes), consts or {}
    inputs = ["R", "T"] + [f"{s}{i}" for s in states_in for i in range(n)]
    outs = [f"{s}{i}_new" for s in states_out for i in range(n)][:outputs]
    types = {"R": (r_elem, []), "T": (INT64, [])}
    types.update({f"{s}{i}": (elem, list(shapes[i])) for s in states_in for i in range(n)})
    graph = helper.make_graph(
        [helper.make_node(op, inputs, outs, domain=TRAINING, **attrs)],
        op.lower(),
        [helper.make_tensor_value_info(k, *types[k]) for k in inputs if k not in consts],
        [helper.make_tensor_value_info(o, elem, None) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid(TRAINING, 1)]
    return helper.make_model(graph, opset_imports=opsets)


def optimizer_feeds(op: str, shapes, elem: int, r_elem: int, t: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    feeds = {"R": np.array(0.1, helper.tensor_dtype_to_np_dtype(r_elem)), "T": np.array(t, np.int64)}
    for s in STATES[op][0]:
        for i, shape in enumerate(shapes):
            data = rng.standard_normal(shape)
            feeds[f"{s}{i}"] = (np.abs(data) if s == "H" else data).astype(dtype)  # H accumulates squares
    return feeds


def reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]


def check_optimizer(model: onnx.ModelProto, feeds: dict, got: list[np.ndarray], want=None) -> None:
    """mlcc's outputs have the tensors' type; onnx's reference promotes some to float64 or casts to float32."""
    dtype = helper.tensor_dtype_to_np_dtype(model.graph.output[0].type.tensor_type.elem_type)
    assert all(g.dtype == dtype for g in got)
    want = reference(model, feeds) if want is None else want
    assert_close(got, [w.astype(dtype) for w in want], rtol=1e-5, atol=1e-6)


# (op, shapes, element type, R's type, T, attributes)
OPTIMIZERS = {
    "adagrad_defaults": ("Adagrad", [(5,)], FLOAT, FLOAT, 0, {}),
    "adagrad_all_attributes": (
        "Adagrad",
        [(3, 4)],
        FLOAT,
        FLOAT,
        3,
        {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.01},
    ),
    "adagrad_three_tensors_double": (
        "Adagrad",
        [(2,), (3, 2), (1, 2, 3)],
        DOUBLE,
        DOUBLE,
        7,
        {"decay_factor": 0.5, "norm_coefficient": 0.2},
    ),
    "adam_defaults_first_step": ("Adam", [(6,)], FLOAT, FLOAT, 0, {}),
    "adam_bias_corrected": (
        "Adam",
        [(4, 3)],
        FLOAT,
        FLOAT,
        5,
        {"alpha": 0.95, "beta": 0.85, "epsilon": 1e-3, "norm_coefficient": 0.05, "norm_coefficient_post": 0.02},
    ),
    "adam_two_tensors_double_r": ("Adam", [(3,), (2, 5)], FLOAT, DOUBLE, 2, {"alpha": 0.8, "beta": 0.7}),
    "momentum_first_step": (
        "Momentum",
        [(7,)],
        FLOAT,
        FLOAT,
        0,
        {"alpha": 0.9, "beta": 0.3, "mode": "standard", "norm_coefficient": 0.01},
    ),
    "momentum_standard_two_tensors": (
        "Momentum",
        [(2, 2), (5,)],
        DOUBLE,
        DOUBLE,
        4,
        {"alpha": 0.95, "beta": 0.85, "mode": "standard", "norm_coefficient": 0.001},
    ),
    "nesterov_first_step": (
        "Momentum",
        [(3, 3)],
        FLOAT,
        FLOAT,
        0,
        {"alpha": 0.7, "beta": 0.6, "mode": "nesterov", "norm_coefficient": 0.1},
    ),
    "nesterov_later_step": (
        "Momentum",
        [(4,), (1, 3)],
        FLOAT,
        FLOAT,
        9,
        {"alpha": 0.95, "beta": 0.5, "mode": "nesterov", "norm_coefficient": 0.01},
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_matches_reference(name, tmp_path):
    op, shapes, elem, r_elem, t, attrs = OPTIMIZERS[name]
    model = optimizer_model(op, shapes, elem, r_elem, **attrs)
    feeds = optimizer_feeds(op, shapes, elem, r_elem, t, seed=len(name))
    got = run_mlcc(model, feeds, tmp_path / "out")
    check_optimizer(model, feeds, got)
    for i in range(len(shapes)):  # the update moved every tensor
        assert not np.allclose(got[i], feeds[f"X{i}"])


def test_optimizer_with_constant_rate_and_count(tmp_path):
    shapes = [(3, 4)]
    feeds = optimizer_feeds("Adam", shapes, FLOAT, FLOAT, 3, seed=4)
    consts = {k: feeds.pop(k) for k in ("R", "T", "H0")}
    model = optimizer_model("Adam", shapes, consts=consts, alpha=0.5, beta=0.6, norm_coefficient_post=0.1)
    check_optimizer(model, feeds, run_mlcc(model, feeds, tmp_path / "out"))


def test_optimizer_with_fewer_declared_outputs(tmp_path):
    """Only the new X of each tensor: the same numbers as the first outputs of the full node."""
    shapes = [(3,), (2, 2)]
    feeds = optimizer_feeds("Adagrad", shapes, FLOAT, FLOAT, 2, seed=5)
    full = reference(optimizer_model("Adagrad", shapes, decay_factor=0.2), feeds)
    model = optimizer_model("Adagrad", shapes, outputs=2, decay_factor=0.2)
    got = run_mlcc(model, feeds, tmp_path / "out")
    assert len(got) == 2
    check_optimizer(model, feeds, got, full[:2])


@pytest.mark.parametrize("op", ["Adagrad", "Adam", "Momentum"])
def test_optimizer_folds_to_its_reference(op, tmp_path):
    shapes = [(4,), (2, 3)]
    attrs = {"alpha": 0.9, "beta": 0.5, "mode": "nesterov", "norm_coefficient": 0.1} if op == "Momentum" else {}
    feeds = optimizer_feeds(op, shapes, FLOAT, FLOAT, 1, seed=6)
    model = optimizer_model(op, shapes, consts=feeds, **attrs)
    check_optimizer(model, {}, run_mlcc(model, {}, tmp_path / "out"))
    assert "_" + op.lower() + "(" not in (tmp_path / "out" / "model.c").read_text(), "not folded"


def test_optimizer_errors_name_the_problem(tmp_path):
    no_mode = optimizer_model("Momentum", [(3,)], alpha=0.9, beta=0.1, norm_coefficient=0.0)
    with pytest.raises(mlcc.MlccError, match="mode must be"):
        mlcc.compile(no_mode, out_dir=tmp_path / "mode", build=False)
    no_alpha = optimizer_model("Momentum", [(3,)], beta=0.1, mode="standard", norm_coefficient=0.0)
    with pytest.raises(mlcc.MlccError, match="attribute alpha is required"):
        mlcc.compile(no_alpha, out_dir=tmp_path / "alpha", build=False)
    uneven = optimizer_model("Adagrad", [(3,)])
    uneven.graph.node[0].input.append("X0")
    with pytest.raises(mlcc.MlccError, match=r"2 \+ 3n inputs"):
        mlcc.compile(uneven, out_dir=tmp_path / "uneven", build=False)
    mismatch = optimizer_model("Adam", [(3,)])
    mismatch.graph.input[4].type.tensor_type.shape.dim[0].dim_value = 4  # V0
    with pytest.raises(mlcc.MlccError, match="V 'V0'"):
        mlcc.compile(mismatch, out_dir=tmp_path / "shape", build=False)


# ---------------------------------------------------------------------------------------------- Resize


def resize_model(shape, mode: str, elem: int = FLOAT, scales=None, sizes=None, roi=None, **attrs) -> onnx.ModelProto:
    consts = {"roi": np.array(roi or [], np.float32)}
    names = ["X", "roi"]
    if scales is not None:
        consts["scales"] = np.array(scales, np.float32)
        names.append("scales")
    else:
        consts["sizes"] = np.array(sizes, np.int64)
        names += ["", "sizes"]
    graph = helper.make_graph(
        [helper.make_node("Resize", names, ["Y"], mode=mode, antialias=1, **attrs)],
        "resize",
        [helper.make_tensor_value_info("X", elem, shape)],
        [helper.make_tensor_value_info("Y", elem, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


# (input shape, mode, Resize inputs and attributes); every case against onnxruntime and onnx's reference
RESIZES = {
    "linear_half": ((1, 1, 8, 8), "linear", {"scales": [1, 1, 0.5, 0.5]}),
    "cubic_half": ((1, 1, 8, 8), "cubic", {"scales": [1, 1, 0.5, 0.5]}),
    "linear_uneven_scales": ((2, 3, 13, 9), "linear", {"scales": [1, 1, 0.3, 0.45]}),
    "cubic_uneven_scales": ((2, 3, 13, 9), "cubic", {"scales": [1, 1, 0.3, 0.45]}),
    "linear_sizes_exclude_outside": ((2, 3, 13, 9), "linear", {"sizes": [2, 3, 5, 4], "exclude_outside": 1}),
    "cubic_sizes_exclude_outside": ((2, 3, 13, 9), "cubic", {"sizes": [2, 3, 5, 4], "exclude_outside": 1}),
    "cubic_shrink_and_grow_coeff": ((2, 3, 13, 9), "cubic", {"sizes": [2, 3, 5, 20], "cubic_coeff_a": -0.5}),
    "linear_asymmetric": (
        (2, 3, 13, 9),
        "linear",
        {"scales": [1, 1, 0.6, 0.7], "coordinate_transformation_mode": "asymmetric"},
    ),
    "linear_pytorch_half_pixel": (
        (2, 3, 13, 9),
        "linear",
        {"scales": [1, 1, 0.6, 0.7], "coordinate_transformation_mode": "pytorch_half_pixel"},
    ),
    "cubic_half_pixel_symmetric": (
        (2, 3, 13, 9),
        "cubic",
        {"scales": [1, 1, 0.6, 0.7], "coordinate_transformation_mode": "half_pixel_symmetric"},
    ),
    "linear_1d_quarter": ((2, 3, 17), "linear", {"scales": [1, 1, 0.25]}),
    "cubic_axes_sizes": ((1, 1, 7, 7), "cubic", {"sizes": [3, 3], "axes": [2, 3]}),
    "linear_not_larger": (
        (1, 2, 12, 10),
        "linear",
        {"sizes": [5, 5], "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
    ),
    "linear_uint8": ((1, 2, 11, 11), "linear", {"scales": [1, 1, 0.4, 0.4], "elem": UINT8}),
}

# onnxruntime differs from onnx's reference for these (it rejects cubic over 3 axes, and maps align_corners and
# crop-and-resize from the output size), so only the reference judges them
REFERENCE_ONLY = {
    "cubic_three_axes": ((2, 3, 17), "cubic", {"scales": [1, 0.5, 0.25]}),
    "linear_align_corners": (
        (2, 3, 13, 9),
        "linear",
        {"scales": [1, 1, 0.6, 1.7], "coordinate_transformation_mode": "align_corners"},
    ),
    "cubic_tf_crop_and_resize": (
        (1, 1, 12, 12),
        "cubic",
        {
            "sizes": [1, 1, 4, 5],
            "roi": [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3],
            "coordinate_transformation_mode": "tf_crop_and_resize",
            "extrapolation_value": 7.0,
        },
    ),
}


def resize_case(table: dict, name: str, seed: int):
    shape, mode, kw = table[name]
    model = resize_model(shape, mode, **kw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 10
    x = (x + 128).clip(0, 255).astype(np.uint8) if kw.get("elem") == UINT8 else x.astype(np.float32)
    return model, {"X": x}


@pytest.mark.parametrize("name", sorted(RESIZES))
def test_resize_antialias_matches_onnxruntime_and_reference(name, tmp_path):
    model, feeds = resize_case(RESIZES, name, seed=len(name))
    got = run_mlcc(model, feeds, tmp_path / "out")
    atol = 1 if got[0].dtype == np.uint8 else 1e-4  # rounding of values that land near .5
    assert_close(got, run_ort(model, feeds), rtol=1e-4, atol=atol)
    assert_close(got, reference(model, feeds), rtol=1e-5, atol=0 if atol == 1 else 1e-4)


@pytest.mark.parametrize("name", sorted(REFERENCE_ONLY))
def test_resize_antialias_matches_reference(name, tmp_path):
    model, feeds = resize_case(REFERENCE_ONLY, name, seed=len(name))
    got = run_mlcc(model, feeds, tmp_path / "out")
    assert_close(got, reference(model, feeds), rtol=1e-5, atol=1e-4)


def test_antialias_differs_from_plain_resize(tmp_path):
    """Shrinking by 4 averages over a wide window: not the 2- or 4-tap interpolation of antialias=0."""
    model, feeds = resize_case(RESIZES, "cubic_uneven_scales", seed=3)
    got = run_mlcc(model, feeds, tmp_path / "aa")[0]
    next(a for a in model.graph.node[0].attribute if a.name == "antialias").i = 0
    plain = run_mlcc(model, feeds, tmp_path / "plain")[0]
    assert np.abs(got - plain).max() > 0.1


def test_resize_antialias_folds_to_its_reference(tmp_path):
    model, feeds = resize_case(RESIZES, "linear_uneven_scales", seed=8)
    model.graph.initializer.append(numpy_helper.from_array(feeds["X"], "X"))
    del model.graph.input[:]
    assert_close(run_mlcc(model, {}, tmp_path / "out"), reference(model, feeds), rtol=1e-5, atol=1e-5)
    assert "_resize(" not in (tmp_path / "out" / "model.c").read_text(), "not folded"


# ---------------------------------------------------------------------------------------------- builds


def all_ops_model() -> onnx.ModelProto:
    """Every optimizer, the antialias kernel variants and nearest Resize (a gather without weights; with them
    where tf_crop_and_resize extrapolates) in one model, for the strict compile checks."""
    f32 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Adagrad", ["r", "t", "x", "g", "h"], ["ax", "ah"], domain=TRAINING, decay_factor=0.1),
        helper.make_node("Adam", ["r", "t", "x", "g", "v", "h"], ["bx", "bv", "bh"], domain=TRAINING),
        helper.make_node(
            "Momentum",
            ["r", "t", "x", "y", "g", "g2", "v", "v2"],
            ["cx", "cy", "cv", "cv2"],
            domain=TRAINING,
            alpha=0.9,
            beta=0.1,
            mode="nesterov",
            norm_coefficient=0.01,
        ),
        helper.make_node("Resize", ["img", "", "s1"], ["lin"], mode="linear", antialias=1),
        helper.make_node("Resize", ["img", "", "s2"], ["cub"], mode="cubic", antialias=1, exclude_outside=1),
        helper.make_node(
            "Resize",
            ["img", "roi", "s1"],
            ["crop"],
            mode="linear",
            antialias=1,
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        helper.make_node("Resize", ["img", "", "s3"], ["near"], mode="nearest"),
        helper.make_node(
            "Resize",
            ["img", "roi", "s1"],
            ["nearcrop"],
            mode="nearest",
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
    ]
    vec = lambda name, n=6: helper.make_tensor_value_info(name, FLOAT, [n])  # noqa: E731
    inputs = [helper.make_tensor_value_info("r", FLOAT, []), helper.make_tensor_value_info("t", INT64, [])]
    inputs += [vec(n) for n in ("x", "g", "v", "h")] + [vec(n, 3) for n in ("y", "g2", "v2")]
    inputs.append(helper.make_tensor_value_info("img", FLOAT, [1, 2, 12, 10]))
    outs = ["ax", "ah", "bx", "bv", "bh", "cx", "cy", "cv", "cv2", "lin", "cub", "crop", "near", "nearcrop"]
    graph = helper.make_graph(
        nodes,
        "training_antialias",
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
        [
            f32("s1", [1, 1, 0.5, 0.3]),
            f32("s2", [1, 1, 0.4, 1.5]),
            f32("s3", [1, 1, 2, 2]),
            f32("roi", [0, 0, 0.1, 0, 1, 1, 0.8, 1]),
        ],
    )
    opsets = [helper.make_opsetid("", 19), helper.make_opsetid(TRAINING, 1)]
    return helper.make_model(graph, opset_imports=opsets)


def test_generated_c_compiles_without_warnings(tmp_path):
    source = build_c_strictly(all_ops_model(), tmp_path)
    assert all(f"_{op}(" in source for op in ("adagrad", "adam", "momentum", "resize"))


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, ptxas = compile_cuda_strictly(all_ops_model(), tmp_path)
    assert "cudaGraphLaunch" in source and "static __global__ void" in source
    for kernel in ("adagrad", "adam", "momentum", "resize"):
        assert f"_{kernel}" in ptxas, f"ptxas compiled no {kernel} kernel"
