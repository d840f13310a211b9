"""Every op of the foundation set against onnxruntime: one-node (or small) models on seeded random inputs, with
broadcasting and attribute variants, compiled and built for the c target and compared within tolerance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import HOST_CPUS, assert_close, op_mix, run_mlcc, run_ort

F32, I64 = np.float32, np.int64


@dataclass
class Case:
    """A model of `nodes` over runtime inputs `x` (name -> (shape, dtype)) and constant `w` (initializers)."""

    nodes: list[onnx.NodeProto]
    x: dict[str, tuple[tuple[int, ...], type]]
    outputs: list[str] = field(default_factory=lambda: ["y"])
    w: dict[str, np.ndarray] = field(default_factory=dict)
    opset: int = 17
    positive: bool = False  # inputs drawn from (0.1, 2) instead of the normal distribution
    rtol: float = 1e-4


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


def unary(op, shape=(2, 3, 4), **kw):
    return Case([node(op, ["a"], **kw.pop("attrs", {}))], {"a": (shape, F32)}, **kw)


def binary(op, sa, sb, dtype=F32, **kw):
    return Case([node(op, ["a", "b"])], {"a": (sa, dtype), "b": (sb, dtype)}, **kw)


def conv(x, w, b=None, **attrs):
    weights = {"w": np.random.default_rng(1).standard_normal(w).astype(F32)}
    if b is not None:
        weights["b"] = np.random.default_rng(2).standard_normal(b).astype(F32)
    return Case([node("Conv", ["x", "w"] + (["b"] if b else []), **attrs)], {"x": (x, F32)}, w=weights)


def pool(op, x=(1, 2, 9, 9), dtype=F32, **attrs):
    return Case([node(op, ["x"], **attrs)], {"x": (x, dtype)})


def const(a):
    return np.array(a, dtype=I64)


RNG_W = np.random.default_rng(7)
CASES = {
    # Convolution: groups, dilations, pads (explicit and auto_pad), strides, bias, 1-D and 3-D.
    "conv_basic": conv((1, 3, 8, 8), (4, 3, 3, 3), 4),
    "conv_pads_strides": conv((2, 3, 9, 7), (5, 3, 3, 2), 5, pads=[1, 0, 2, 1], strides=[2, 1]),
    "conv_dilations": conv((1, 2, 10, 10), (3, 2, 3, 3), dilations=[2, 3]),
    "conv_groups": conv((1, 6, 7, 7), (4, 3, 3, 3), 4, group=2, pads=[1, 1, 1, 1]),
    "conv_depthwise": conv((1, 4, 8, 8), (4, 1, 3, 3), 4, group=4, pads=[1, 1, 1, 1]),
    "conv_same_upper": conv((1, 2, 7, 8), (3, 2, 3, 4), auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv_same_lower": conv((1, 2, 7, 8), (3, 2, 2, 3), auto_pad="SAME_LOWER"),
    "conv_valid": conv((1, 2, 7, 8), (3, 2, 3, 3), auto_pad="VALID", strides=[2, 3]),
    "conv_1d": conv((2, 3, 11), (4, 3, 3), 4, pads=[1, 2], strides=[2]),
    "conv_3d": conv((1, 2, 5, 6, 4), (3, 2, 3, 3, 2), 3, pads=[1, 1, 0, 1, 1, 1]),
    # ConvTranspose: strides, pads, output_padding, groups, dilations, output_shape, auto_pad, 1-D to 3-D.
    "conv_transpose_2d": Case(
        [node("ConvTranspose", ["x", "w", "b"], strides=[2, 3], pads=[1, 0, 0, 2], output_padding=[1, 0])],
        {"x": ((2, 4, 5, 4), F32)},
        w={"w": RNG_W.standard_normal((4, 3, 3, 4)).astype(F32), "b": RNG_W.standard_normal(3).astype(F32)},
    ),
    "conv_transpose_groups_dilations": Case(
        [node("ConvTranspose", ["x", "w"], group=2, dilations=[2, 1], strides=[1, 2])],
        {"x": ((1, 4, 4, 5), F32)},
        w={"w": RNG_W.standard_normal((4, 3, 3, 2)).astype(F32)},
    ),
    "conv_transpose_1d_output_shape": Case(
        [node("ConvTranspose", ["x", "w"], strides=[3], output_shape=[8])],
        {"x": ((1, 2, 3), F32)},
        w={"w": RNG_W.standard_normal((2, 2, 3)).astype(F32)},
    ),
    "conv_transpose_3d_same_upper": Case(
        [node("ConvTranspose", ["x", "w"], strides=[2, 2, 1], auto_pad="SAME_UPPER")],
        {"x": ((1, 2, 3, 3, 2), F32)},
        w={"w": RNG_W.standard_normal((2, 2, 3, 2, 2)).astype(F32)},
    ),
    # Einsum: explicit and implicit outputs, ellipsis broadcasting, diagonals, integer types.
    "einsum_attention_scores": Case(
        [node("Einsum", ["a", "b"], equation="bhqd,bhkd->bhqk")], {"a": ((2, 3, 4, 5), F32), "b": ((2, 3, 6, 5), F32)}
    ),
    "einsum_ellipsis_broadcast": Case(
        [node("Einsum", ["a", "b"], equation="...ij,...jk->...ik")],
        {"a": ((2, 1, 3, 4), F32), "b": ((1, 5, 4, 2), F32)},
    ),
    "einsum_implicit_three_operands": Case(
        [node("Einsum", ["a", "b", "c"], equation="ij,jk,k")],
        {"a": ((3, 4), F32), "b": ((4, 5), F32), "c": ((5,), F32)},
    ),
    "einsum_diagonal_int64": Case([node("Einsum", ["a"], equation="ii->i")], {"a": ((4, 4), I64)}),
    "einsum_outer_sum": Case([node("Einsum", ["a", "b"], equation="i,j->")], {"a": ((3,), F32), "b": ((4,), F32)}),
    # Upsample (deprecated): scales as attribute (opset 7) and input (opset 9), nearest and linear.
    "upsample_nearest_opset7": Case(
        [node("Upsample", ["x"], scales=[1.0, 1.0, 2.0, 3.0])], {"x": ((1, 2, 3, 2), F32)}, opset=7
    ),
    "upsample_linear_opset9": Case(
        [node("Upsample", ["x", "s"], mode="linear")],
        {"x": ((1, 2, 3, 4), F32)},
        w={"s": np.array([1.0, 1.0, 2.0, 1.5], np.float32)},
        opset=9,
    ),
    # Gemm: transposes, alpha/beta, bias broadcasting.
    "gemm_bias_vector": Case(
        [node("Gemm", ["a", "b", "c"])], {"a": ((4, 5), F32), "b": ((5, 3), F32), "c": ((3,), F32)}
    ),
    "gemm_trans_alpha_beta": Case(
        [node("Gemm", ["a", "b", "c"], transA=1, transB=1, alpha=0.5, beta=2.0)],
        {"a": ((5, 4), F32), "b": ((3, 5), F32), "c": ((4, 1), F32)},
    ),
    "gemm_no_bias": Case([node("Gemm", ["a", "b"], transB=1)], {"a": ((2, 6), F32), "b": ((7, 6), F32)}),
    "gemm_gemv_deep_constant_b": Case(  # one row, K beyond a K block: the packed GEMM's single-pass path
        [node("Gemm", ["a", "b", "c"])],
        {"a": ((1, 900), F32)},
        w={"b": np.random.default_rng(5).standard_normal((900, 70)).astype(np.float32), "c": np.ones(70, np.float32)},
    ),
    "gemm_matrix_bias_opset11": Case(
        [node("Gemm", ["a", "b", "c"])],
        {"a": ((3, 4), F32), "b": ((4, 2), F32), "c": ((3, 2), F32)},
        opset=11,
    ),
    # MatMul: 2-D, batched, broadcasting batch dims, 1-D operands.
    "matmul_2d": binary("MatMul", (3, 4), (4, 5)),
    "matmul_batched": binary("MatMul", (2, 3, 4), (2, 4, 5)),
    "matmul_broadcast": binary("MatMul", (2, 1, 3, 4), (3, 4, 2)),
    "matmul_1d_left": binary("MatMul", (4,), (2, 4, 3)),
    "matmul_1d_right": binary("MatMul", (2, 3, 4), (4,)),
    # Elementwise binary with numpy broadcasting, float and int64.
    "add_broadcast": binary("Add", (2, 3, 4), (3, 1)),
    "sub_broadcast": binary("Sub", (1, 4), (3, 1)),
    "mul_scalar": binary("Mul", (2, 3), ()),
    "div_broadcast": Case([node("Div", ["a", "b"])], {"a": ((2, 3, 4), F32), "b": ((4,), F32)}, positive=True),
    "add_int64": binary("Add", (3, 4), (4,), dtype=I64),
    "mul_int64": binary("Mul", (2, 3), (2, 1), dtype=I64),
    "sum_three": Case([node("Sum", ["a", "b", "c"])], {"a": ((2, 3), F32), "b": ((3,), F32), "c": ((2, 1), F32)}),
    "max_three": Case([node("Max", ["a", "b", "c"])], {"a": ((2, 3), F32), "b": ((3,), F32), "c": ((2, 1), F32)}),
    "min_two": binary("Min", (4, 1, 3), (2, 1)),
    "max_int64": binary("Max", (3,), (2, 3), dtype=I64),
    "pow_broadcast": Case([node("Pow", ["a", "b"])], {"a": ((2, 3), F32), "b": ((3,), F32)}, positive=True),
    "pow_square": Case([node("Pow", ["a", "e"])], {"a": ((2, 3), F32)}, w={"e": np.array(2.0, F32)}),
    # Elementwise unary.
    "relu": unary("Relu"),
    "leakyrelu": unary("LeakyRelu", attrs={"alpha": 0.2}),
    "sigmoid": unary("Sigmoid"),
    "tanh": unary("Tanh"),
    "exp": unary("Exp"),
    "log": unary("Log", positive=True),
    "sqrt": unary("Sqrt", positive=True),
    "erf": unary("Erf"),
    "clip_inputs": Case(
        [node("Clip", ["a", "lo", "hi"])], {"a": ((3, 4), F32)}, w={"lo": np.array(-0.5, F32), "hi": np.array(0.7, F32)}
    ),
    "clip_min_only": Case([node("Clip", ["a", "lo"])], {"a": ((3, 4), F32)}, w={"lo": np.array(0.1, F32)}),
    "clip_opset6_attrs": Case([node("Clip", ["a"], min=-0.3, max=0.4)], {"a": ((3, 4), F32)}, opset=6),
    # Pooling.
    "maxpool_pads_strides": pool("MaxPool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
    "maxpool_ceil_dilations": pool("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, dilations=[2, 1]),
    "maxpool_same_upper": pool("MaxPool", kernel_shape=[3, 2], auto_pad="SAME_UPPER", strides=[2, 2]),
    "maxpool_1d": pool("MaxPool", x=(2, 3, 10), kernel_shape=[3], strides=[2]),
    # unit column stride: the row kernel (pool_rows.c.j2)
    "maxpool_sppf": pool("MaxPool", x=(1, 3, 10, 10), kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
    "maxpool_rows_asymmetric": pool("MaxPool", kernel_shape=[3, 2], pads=[1, 0, 0, 1], strides=[2, 1]),
    "maxpool_rows_ceil": pool("MaxPool", x=(1, 2, 7, 6), kernel_shape=[2, 3], strides=[3, 1], ceil_mode=1),
    "maxpool_rows_1d": pool("MaxPool", x=(2, 3, 10), kernel_shape=[4], pads=[3, 1]),
    "maxpool_plane_same_upper": pool("MaxPool", x=(2, 3, 7, 9), kernel_shape=[4, 2], auto_pad="SAME_UPPER"),
    "maxpool_plane_1d": pool("MaxPool", x=(2, 3, 10), kernel_shape=[5], pads=[1, 3]),
    "maxpool_rows_stride2_ceil": pool(
        "MaxPool", x=(1, 2, 9, 8), kernel_shape=[3, 3], pads=[1, 1, 0, 1], strides=[2, 2], ceil_mode=1
    ),
    "maxpool_rows_stride2_wide": pool(
        "MaxPool", x=(1, 2, 6, 37), kernel_shape=[2, 4], pads=[0, 2, 1, 1], strides=[1, 2]
    ),
    "maxpool_rows_stride3_ceil": pool(
        "MaxPool", x=(1, 2, 11, 13), kernel_shape=[2, 4], pads=[1, 2, 0, 1], strides=[3, 3], ceil_mode=1
    ),
    "maxpool_rows_int8": pool(
        "MaxPool", x=(1, 3, 9, 10), dtype=np.int8, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]
    ),
    "maxpool_rows_uint8": pool("MaxPool", x=(1, 3, 9, 40), dtype=np.uint8, kernel_shape=[3, 3], strides=[2, 2]),
    "maxpool_rows_stride2_unpadded": pool("MaxPool", x=(1, 2, 8, 35), kernel_shape=[3, 3], strides=[2, 2]),
    "maxpool_plane_int8": pool("MaxPool", x=(1, 2, 7, 9), dtype=np.int8, kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
    "maxpool_general_wide_kernel": pool("MaxPool", x=(1, 2, 9, 20), kernel_shape=[3, 17], pads=[0, 3, 0, 3]),
    "averagepool_exclude_pad": pool("AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
    "averagepool_include_pad": pool(
        "AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1, strides=[2, 2]
    ),
    "averagepool_ceil": pool("AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    "globalaveragepool": pool("GlobalAveragePool", x=(2, 3, 5, 6)),  # 8 lanes and a tail of 6
    "globalaveragepool_7x7": pool("GlobalAveragePool", x=(1, 20, 7, 7)),  # 8 lanes and a tail of 1
    "globalaveragepool_3x3": pool("GlobalAveragePool", x=(1, 5, 3, 3)),  # one chain
    "globalaveragepool_13x13": pool("GlobalAveragePool", x=(1, 4, 13, 13)),  # 16 lanes and a tail of 9
    "globalmaxpool": pool("GlobalMaxPool", x=(2, 3, 5, 6)),
    # Normalisation.
    "batchnorm": Case(
        [node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
        {"x": ((2, 3, 4, 5), F32)},
        w={
            "s": RNG_W.standard_normal(3).astype(F32),
            "b": RNG_W.standard_normal(3).astype(F32),
            "m": RNG_W.standard_normal(3).astype(F32),
            "v": RNG_W.uniform(0.5, 2, 3).astype(F32),
        },
    ),
    "batchnorm_training_mode": Case(
        [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1, momentum=0.8)],
        {"x": ((3, 4, 2, 5), F32)},
        ["y", "rm", "rv"],
        w={
            "s": RNG_W.standard_normal(4).astype(F32),
            "b": RNG_W.standard_normal(4).astype(F32),
            "m": RNG_W.standard_normal(4).astype(F32),
            "v": RNG_W.uniform(0.5, 2, 4).astype(F32),
        },
        opset=15,
    ),
    "lrn": Case([node("LRN", ["x"], size=3, alpha=1e-3, beta=0.75, bias=2.0)], {"x": ((1, 5, 4, 4), F32)}),
    "softmax_axis1_opset11": Case([node("Softmax", ["x"], axis=1)], {"x": ((2, 3, 4), F32)}, opset=11),
    "softmax_last_axis": Case([node("Softmax", ["x"])], {"x": ((2, 3, 4), F32)}),
    "softmax_axis0": Case([node("Softmax", ["x"], axis=0)], {"x": ((3, 4), F32)}),
    # a strided axis (inner >= 16): blocks of 64 columns, the last partial
    "softmax_strided_axis": Case([node("Softmax", ["x"], axis=1)], {"x": ((2, 16, 70), F32)}),
    "logsoftmax_strided_axis": Case([node("LogSoftmax", ["x"], axis=1)], {"x": ((1, 5, 20), F32)}),
    # Shape manipulation (constant shape inputs as initializers).
    "reshape_zero_minus_one": Case([node("Reshape", ["x", "s"])], {"x": ((2, 3, 4), F32)}, w={"s": const([0, -1])}),
    "flatten_axis2": Case([node("Flatten", ["x"], axis=2)], {"x": ((2, 3, 4, 5), F32)}),
    "flatten_axis0": Case([node("Flatten", ["x"], axis=0)], {"x": ((2, 3, 4), F32)}),
    "transpose_perm": Case([node("Transpose", ["x"], perm=[2, 0, 3, 1])], {"x": ((2, 3, 4, 5), F32)}),
    "transpose_default": Case([node("Transpose", ["x"])], {"x": ((2, 3, 4), F32)}),
    "concat_axis1": Case([node("Concat", ["a", "b"], axis=1)], {"a": ((2, 3, 4), F32), "b": ((2, 1, 4), F32)}),
    "concat_negative_axis_int64": Case(
        [node("Concat", ["a", "b", "c"], axis=-1)], {"a": ((2, 1), I64), "b": ((2, 3), I64), "c": ((2, 2), I64)}
    ),
    "split_attr": Case(
        [node("Split", ["x"], ["y", "z"], axis=1, split=[1, 3])], {"x": ((2, 4, 3), F32)}, ["y", "z"], opset=11
    ),
    "split_input": Case(
        [node("Split", ["x", "s"], ["y", "z", "u"], axis=-1)],
        {"x": ((2, 6), F32)},
        ["y", "z", "u"],
        w={"s": const([1, 2, 3])},
    ),
    "split_num_outputs": Case(
        [node("Split", ["x"], ["y", "z", "u"], axis=0, num_outputs=3)], {"x": ((7, 2), F32)}, ["y", "z", "u"], opset=18
    ),
    "slice_steps": Case(
        [node("Slice", ["x", "st", "en", "ax", "sp"])],
        {"x": ((6, 7, 5), F32)},
        w={"st": const([1, -1]), "en": const([6, -8]), "ax": const([0, 1]), "sp": const([2, -2])},
    ),
    "slice_opset9_attrs": Case(
        [node("Slice", ["x"], starts=[0, 1], ends=[2, 100], axes=[0, 2])], {"x": ((3, 4, 5), F32)}, opset=9
    ),
    "squeeze_axes_input": Case([node("Squeeze", ["x", "ax"])], {"x": ((1, 3, 1, 2), F32)}, w={"ax": const([0, -2])}),
    "squeeze_all_opset11": Case([node("Squeeze", ["x"])], {"x": ((1, 3, 1, 2), F32)}, opset=11),
    "unsqueeze_axes_input": Case([node("Unsqueeze", ["x", "ax"])], {"x": ((3, 2), F32)}, w={"ax": const([0, 3])}),
    "unsqueeze_opset11_attr": Case([node("Unsqueeze", ["x"], axes=[-1, 1])], {"x": ((3, 2), F32)}, opset=11),
    "gather_axis0": Case([node("Gather", ["x", "i"])], {"x": ((5, 3), F32)}, w={"i": const([[0, 4], [-1, 2]])}),
    "gather_axis1_negative": Case(
        [node("Gather", ["x", "i"], axis=1)], {"x": ((2, 5, 3), F32)}, w={"i": const([-5, 3, 0])}
    ),
    "gather_scalar_index": Case([node("Gather", ["x", "i"], axis=-1)], {"x": ((2, 5), F32)}, w={"i": const(2)}),
    "identity": unary("Identity"),
    "dropout_inference": Case([node("Dropout", ["x"], ["y", "mask"])], {"x": ((3, 4), F32)}, ["y", "mask"], opset=13),
    "dropout_opset7": Case([node("Dropout", ["x"], ratio=0.3)], {"x": ((3, 4), F32)}, opset=7),
    "constant_add": Case(
        [
            node("Constant", [], ["c"], value=numpy_helper.from_array(np.arange(4, dtype=F32), "c")),
            node("Add", ["x", "c"]),
        ],
        {"x": ((2, 4), F32)},
    ),
    "shape_constantofshape": Case(
        [
            node("Shape", ["x"], ["s"]),
            node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.array([1.5], F32), "v")),
            node("Mul", ["x", "c"]),
        ],
        {"x": ((2, 3), F32)},
    ),
    "shape_slice_opset15": Case([node("Shape", ["x"], start=1, end=-1)], {"x": ((2, 3, 4, 5), F32)}, opset=15),
    "cast_float_int64": Case([node("Cast", ["x"], to=TensorProto.INT64)], {"x": ((3, 4), F32)}),
    "cast_int64_float": Case([node("Cast", ["x"], to=TensorProto.FLOAT)], {"x": ((3, 4), I64)}),
    "cast_float_double": Case([node("Cast", ["x"], to=TensorProto.DOUBLE)], {"x": ((3,), F32)}),
    # A small chain that exercises constant folding of a shape computation and a fused conv epilogue.
    "conv_relu_flatten_gemm": Case(
        [
            node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            node("Relu", ["c"], ["r"]),
            node("Flatten", ["r"], ["f"]),
            node("Gemm", ["f", "g"], transB=1),
        ],
        {"x": ((1, 2, 4, 4), F32)},
        w={"w": RNG_W.standard_normal((3, 2, 3, 3)).astype(F32), "g": RNG_W.standard_normal((5, 48)).astype(F32)},
    ),
}


def make_model(case: Case) -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(t)), s)
        for n, (s, t) in case.x.items()
    ]
    outputs = [helper.make_empty_tensor_value_info(n) for n in case.outputs]
    inits = [numpy_helper.from_array(a, n) for n, a in case.w.items()]
    graph = helper.make_graph(case.nodes, "op_test", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(inferred, full_check=True)
    return inferred


def feeds(case: Case, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for n, (shape, dtype) in case.x.items():
        if dtype is I64:
            out[n] = rng.integers(-50, 50, size=shape, dtype=I64)
        elif np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            out[n] = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        elif case.positive:
            out[n] = rng.uniform(0.1, 2.0, size=shape).astype(dtype)
        else:
            out[n] = rng.standard_normal(shape).astype(dtype)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_onnxruntime(name, tmp_path):
    case = CASES[name]
    model = make_model(case)
    data = feeds(case, seed=sorted(CASES).index(name))
    want = run_ort(model, data)
    got = run_mlcc(model, data, tmp_path / "out")
    assert_close(got, want, rtol=case.rtol, atol=1e-5)


def test_every_foundation_op_is_covered():
    """The foundation op list of the design (issue 2) each appear in at least one case above."""
    required = (
        "Conv Gemm MatMul Add Sub Mul Div Sum Max Min Relu LeakyRelu Sigmoid Tanh Clip Exp Log Sqrt Pow Erf MaxPool "
        "AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization LRN Softmax Reshape Flatten Transpose Concat "
        "Split Slice Squeeze Unsqueeze Gather Identity Dropout Constant ConstantOfShape Shape Cast"
    ).split()
    covered = {n.op_type for c in CASES.values() for n in c.nodes}
    assert not set(required) - covered


def test_op_mix_matches_onnxruntime(tmp_path):
    """Reductions, pads, tiles, comparisons, Resize and LayerNormalization chained in one model."""
    x = {"x": np.random.default_rng(5).standard_normal((2, 3, 8)).astype(F32)}
    model = op_mix()
    assert_close(run_mlcc(model, x, tmp_path / "out"), run_ort(model, x))


def _max_fold(x: np.ndarray, k: tuple[int, int], pads: tuple[int, int, int, int], strides: tuple[int, int]):
    """mlcc's max pooling as defined by its general kernel: per window, from the first element inside the
    input, m = v if v > m (so NaN counts only as the window's first element)."""
    (kh_n, kw_n), (ph, pw, eh, ew), (sh, sw) = k, pads, strides
    n, c, h, w = x.shape
    oh_n, ow_n = (h + ph + eh - kh_n) // sh + 1, (w + pw + ew - kw_n) // sw + 1
    y = np.empty((n, c, oh_n, ow_n), x.dtype)
    for oh in range(oh_n):
        for ow in range(ow_n):
            m = None
            for kh in range(kh_n):
                for kw in range(kw_n):
                    ih, iw = oh * sh - ph + kh, ow * sw - pw + kw
                    if 0 <= ih < h and 0 <= iw < w:
                        v = x[:, :, ih, iw]
                        m = v.copy() if m is None else np.where(v > m, v, m)
            y[:, :, oh, ow] = m
    return y


@pytest.mark.parametrize(
    "k, pads, strides, width",
    [
        ((5, 5), (2, 2, 2, 2), (1, 1), 12),
        ((3, 3), (1, 1, 1, 1), (2, 2), 12),
        ((3, 3), (0, 0, 0, 0), (2, 2), 36),
        ((2, 4), (1, 2, 0, 1), (3, 3), 12),
        ((3, 3), (0, 0, 0, 0), (2, 2), 12),
        ((3, 17), (0, 3, 0, 3), (1, 1), 12),
        ((3, 3), (1, 1, 1, 1), (2, 2), 29),  # 29 columns read as 32 (whole vectors), the right padding reset
    ],
    ids=["plane", "rows_padded_stride2", "rows_stride2", "rows_stride3", "general", "general_wide_kernel", "rows_odd"],
)
def test_max_pooling_kernels_agree_on_nan(k, pads, strides, width, tmp_path, request):
    """The plane, row and general max-pooling kernels agree: a NaN counts only as a window's first element
    (in the row kernel, rows whose first window row holds a NaN go window by window, the others separably;
    both happen here)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 4, 10, width)).astype(F32)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[:, 1] = np.where(np.isnan(x[:, 1]), 0.5, x[:, 1])  # a plane with no NaN
    x[:, 2, ::2] = np.where(np.isnan(x[:, 2, ::2]), 0.5, x[:, 2, ::2])  # NaN only in odd rows
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=list(k), pads=list(pads), strides=list(strides))
    graph = helper.make_graph(
        [node], "p", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = run_mlcc(model, {"x": x}, tmp_path / "out")[0]
    np.testing.assert_array_equal(got, _max_fold(x, k, pads, strides))
    source = (tmp_path / "out" / "model.c").read_text()
    kernel = "plane" if "the whole plane as one run" in source else "rows" if "separably" in source else "general"
    assert request.node.callspec.id.startswith(kernel)


@pytest.mark.parametrize("cpu", HOST_CPUS)
@pytest.mark.parametrize(
    "k, width, height, pads",
    [
        ((3, 3), 36, 9, (0, 0, 0, 0)),
        ((3, 3), 55, 11, (0, 0, 0, 0)),
        ((2, 2), 40, 8, (0, 0, 0, 0)),
        ((3, 3), 111, 7, (0, 0, 0, 0)),
        ((2, 3), 41, 6, (0, 0, 0, 0)),
        ((3, 3), 40, 9, (1, 1, 1, 1)),  # resnet50's pool: the first row and column padded
        ((3, 3), 47, 8, (1, 1, 0, 0)),
    ],
    ids=["3x3_w36", "3x3_w55", "2x2_w40", "3x3_w111", "2x3_w41", "3x3_pad1_w40", "3x3_pad1_w47"],
)
def test_max_pooling_rows_in_registers_agree_on_nan(k, width, height, pads, cpu, tmp_path):
    """Windows of 2 or 3 columns at stride 2 with a left padding of at most 1 (squeezenet's and resnet50's
    pools): with AVX2 and AVX-512 the column maxima stay in registers and the windows come from their even
    and odd columns by shuffles; rows read past their end into the next one (not on the last plane's last
    rows, which take the row buffer, as do rows in the top padding), and rows whose first window row holds a
    NaN go window by window, as in the other kernels."""
    rng = np.random.default_rng(width)
    x = rng.standard_normal((2, 3, height, width)).astype(F32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 1] = np.where(np.isnan(x[:, 1]), -0.5, x[:, 1])  # a plane with no NaN
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=list(k), strides=[2, 2], pads=list(pads))
    graph = helper.make_graph(
        [node], "p", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = run_mlcc(model, {"x": x}, tmp_path / "out", cpu=cpu)[0]
    np.testing.assert_array_equal(got, _max_fold(x, k, pads, (2, 2)))
    assert "in registers" in (tmp_path / "out" / "model.c").read_text()
