"""Quantization ops against onnxruntime: QuantizeLinear and DequantizeLinear (per tensor, per axis, blocked; int8,
uint8, int16, uint16, int32; with and without zero points), DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
ConvInteger and QLinearConv (scalar and per-row/per-column/per-channel zero points and scales); the numpy
reference through constant folding; and the generated CUDA through nvcc."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import NEEDS_NVCC, assert_close, compile_cuda_strictly, run_mlcc, run_ort

NP_TO_ONNX = {
    np.float32: TensorProto.FLOAT,
    np.uint8: TensorProto.UINT8,
    np.int8: TensorProto.INT8,
    np.uint16: TensorProto.UINT16,
    np.int16: TensorProto.INT16,
    np.int32: TensorProto.INT32,
}


def ints(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)


def s8_weights(rng: np.random.Generator, shape) -> np.ndarray:
    """int8 weights that multiply uint8 data, in [-64, 63]. onnxruntime, the reference, adds pairs of u8 x s8
    products in saturating 16-bit lanes (vpmaddubsw) on x86-64 without AVX-512 VNNI, so full-range weights
    make its answers wrong there (seen on an AVX2 host: off by up to 24938 in a MatMulInteger); its own
    quantizer keeps weights to 7 bits (reduce_range) for this reason. Full-range u8 x s8 products are checked
    against numpy in test_matmul_integer_per_row_zero_point."""
    return rng.integers(-64, 64, size=shape).astype(np.int8)


def scales(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.uniform(0.01, 0.05, size=shape).astype(np.float32)


@dataclass
class Op:
    """One `op` node over runtime `inputs` and initializers `consts`, wired in `order` ("" skips an input)."""

    op: str
    inputs: dict[str, np.ndarray]
    consts: dict[str, np.ndarray]
    opset: int
    attrs: dict = field(default_factory=dict)
    order: list[str] | None = None
    outputs: tuple[str, ...] = ("y",)

    def model(self, fold: bool = False) -> onnx.ModelProto:
        """The model; with `fold` every input is an initializer, so mlcc computes the op at compile time."""
        inputs, consts = ({}, {**self.inputs, **self.consts}) if fold else (self.inputs, self.consts)
        graph = helper.make_graph(
            [helper.make_node(self.op, self.order or [*self.inputs, *self.consts], list(self.outputs), **self.attrs)],
            self.op.lower(),
            [helper.make_tensor_value_info(k, NP_TO_ONNX[v.dtype.type], v.shape) for k, v in inputs.items()],
            [helper.make_empty_tensor_value_info(o) for o in self.outputs],
            [numpy_helper.from_array(v, k) for k, v in consts.items()],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])


def check(case: Op, tmp_path, atol: float = 0, fold: bool = False) -> list[np.ndarray]:
    """mlcc against onnxruntime, exactly for integer results (rtol 1e-6 is below one unit of 16 bits)."""
    m, feeds = case.model(fold), {} if fold else case.inputs
    got = run_mlcc(m, feeds, tmp_path)
    assert_close(got, run_ort(m, feeds), rtol=1e-6, atol=atol)
    return got


# ---- QuantizeLinear ----------------------------------------------------------------------------------------

X_SHAPE = (2, 3, 4, 5)
QUANTIZE = ["tensor_uint8", "tensor_int8_no_zero", "axis_int8", "axis_uint8_last", "blocked_int8", "int16", "uint16"]
QUANTIZE += ["precision_float16"]


def quantize(case: str) -> Op:
    rng = np.random.default_rng(len(case))
    x = (rng.standard_normal(X_SHAPE) * 3).astype(np.float32)
    x.flat[:4] = [0.5, 1.5, -2.5, 2.5]  # exact ties round to even
    attrs = {}
    if case == "tensor_uint8":
        s, z = np.array(0.02, np.float32), np.array(128, np.uint8)
    elif case == "tensor_int8_no_zero":
        s, z, attrs = np.array([0.025], np.float32), None, {"output_dtype": TensorProto.INT8}
    elif case == "axis_int8":
        s, z, attrs = scales(rng, (3,)), ints(rng, (3,), np.int8) // 4, {"axis": 1}
    elif case == "axis_uint8_last":
        s, z, attrs = scales(rng, (5,)), ints(rng, (5,), np.uint8), {"axis": -1}
    elif case == "blocked_int8":  # 5 along the last axis in blocks of 2: the last block is short
        s, z, attrs = scales(rng, (2, 3, 4, 3)), ints(rng, (2, 3, 4, 3), np.int8), {"axis": 3, "block_size": 2}
    elif case == "int16":
        s, z = np.array(0.0005, np.float32), np.array(-1000, np.int16)
    elif case == "precision_float16":  # x and the scale rounded to float16, and their quotient too
        s, z, attrs = np.array(0.0137, np.float32), np.array(3, np.int8), {"precision": TensorProto.FLOAT16}
        return Op("QuantizeLinear", {"x": x}, {"s": s, "z": z}, 25, attrs)
    else:
        s, z = np.array(0.0002, np.float32), np.array(30000, np.uint16)
    return Op("QuantizeLinear", {"x": x}, {"s": s} if z is None else {"s": s, "z": z}, 21, attrs)


@pytest.mark.parametrize("case", QUANTIZE)
def test_quantize_linear(case, tmp_path):
    check(quantize(case), tmp_path)


def test_quantize_linear_runtime_scale_and_old_opset(tmp_path):
    """Opset 10 (per tensor only), scale and zero point fed at run time; values saturate at both ends."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 6)) * 10).astype(np.float32)
    feeds = {"x": x, "s": np.array(0.03, np.float32), "z": np.array(100, np.uint8)}
    y = check(Op("QuantizeLinear", feeds, {}, 10), tmp_path)[0]
    assert y.min() == 0 and y.max() == 255


# ---- DequantizeLinear --------------------------------------------------------------------------------------

DEQUANTIZE = ["tensor_uint8", "tensor_int8_no_zero", "axis_int8", "axis_uint8", "blocked", "int32"]


def dequantize(case: str) -> Op:
    rng = np.random.default_rng(10 + len(case))
    attrs = {}
    if case == "tensor_uint8":
        x, s, z = ints(rng, X_SHAPE, np.uint8), np.array(0.02, np.float32), np.array(131, np.uint8)
    elif case == "tensor_int8_no_zero":
        x, s, z = ints(rng, X_SHAPE, np.int8), np.array([0.5], np.float32), None
    elif case == "axis_int8":
        x, s, z, attrs = ints(rng, X_SHAPE, np.int8), scales(rng, (4,)), ints(rng, (4,), np.int8), {"axis": 2}
    elif case == "axis_uint8":
        x, s, z, attrs = ints(rng, X_SHAPE, np.uint8), scales(rng, (3,)), ints(rng, (3,), np.uint8), {"axis": 1}
    elif case == "blocked":
        x, s, z = ints(rng, X_SHAPE, np.int8), scales(rng, (2, 1, 4, 5)), ints(rng, (2, 1, 4, 5), np.int8)
        attrs = {"axis": 1, "block_size": 3}
    else:
        x, s, z = rng.integers(-(10**6), 10**6, X_SHAPE).astype(np.int32), np.array(0.001, np.float32), None
    return Op("DequantizeLinear", {"x": x}, {"s": s} if z is None else {"s": s, "z": z}, 21, attrs)


@pytest.mark.parametrize("case", DEQUANTIZE)
def test_dequantize_linear(case, tmp_path):
    check(dequantize(case), tmp_path, atol=1e-6)


def test_qdq_weights_fold_at_compile_time(tmp_path):
    """DequantizeLinear of constant per-channel int8 weights folds (the numpy reference) into a float MatMul."""
    rng = np.random.default_rng(3)
    w, s = ints(rng, (6, 4), np.int8), scales(rng, (4,))
    x = rng.standard_normal((3, 6)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], axis=1),
            helper.make_node("MatMul", ["x", "wf"], ["y"]),
        ],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(s, "s")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    # numpy, not onnxruntime: onnxruntime rewrites DequantizeLinear -> MatMul into a quantized product
    assert_close(run_mlcc(m, {"x": x}, tmp_path), [x @ (w.astype(np.float32) * s)], rtol=1e-5, atol=1e-5)
    source = (tmp_path / "model.c").read_text()
    assert "dequantizelinear" not in source and "matmul" in source


# ---- DynamicQuantizeLinear ---------------------------------------------------------------------------------

SHIFTS = [0.0, 5.0, -5.0]


def dynamic_quantize(shift: float) -> Op:
    """Mixed signs, all positive (min clamps to 0) or all negative (max clamps to 0)."""
    x = (np.random.default_rng(int(shift) + 20).standard_normal((3, 7, 5)) + shift).astype(np.float32)
    return Op("DynamicQuantizeLinear", {"x": x}, {}, 11, outputs=("y", "y_scale", "y_zero_point"))


@pytest.mark.parametrize("shift", SHIFTS)
def test_dynamic_quantize_linear(shift, tmp_path):
    check(dynamic_quantize(shift), tmp_path, atol=1e-7)


# ---- MatMulInteger / QLinearMatMul -------------------------------------------------------------------------

MATMUL_INTEGER = {
    "uint8_scalar": (np.uint8, np.uint8, "scalar"),
    "uint8_int8_column": (np.uint8, np.int8, "column"),
    "int8_no_zero": (np.int8, np.int8, "none"),
    "uint8_a_only": (np.uint8, np.uint8, "a_only"),
}


def matmul_integer(case: str) -> Op:
    a_type, b_type, zeros = MATMUL_INTEGER[case]
    rng = np.random.default_rng(30 + len(case))
    a = ints(rng, (2, 5, 7), a_type)
    b = s8_weights(rng, (7, 6)) if (a_type, b_type) == (np.uint8, np.int8) else ints(rng, (7, 6), b_type)
    consts = {}
    if zeros in ("scalar", "a_only", "column"):
        consts["za"] = ints(rng, (), a_type)
    if zeros in ("scalar", "column"):
        consts["zb"] = ints(rng, (6,) if zeros == "column" else (), b_type)
    return Op("MatMulInteger", {"a": a, "b": b}, consts, 10)


@pytest.mark.parametrize("case", MATMUL_INTEGER)
def test_matmul_integer(case, tmp_path):
    check(matmul_integer(case), tmp_path)


@pytest.mark.parametrize("a_shape, zero_shape", [((5, 7), (5,)), ((2, 5, 7), (2, 5, 1))], ids=["vector", "nd"])
def test_matmul_integer_per_row_zero_point(a_shape, zero_shape, tmp_path):
    """Per-row zero points of A as the spec writes them (numpy: onnxruntime takes only scalars for A)."""
    rng = np.random.default_rng(35)
    a, b, za = ints(rng, a_shape, np.uint8), ints(rng, (7, 6), np.int8), ints(rng, zero_shape, np.uint8)
    op = Op("MatMulInteger", {"a": a, "b": b}, {"za": za}, 10)
    want = (a.astype(np.int32) - za.reshape(a_shape[:-1] + (1,))) @ b.astype(np.int32)
    assert_close(run_mlcc(op.model(), op.inputs, tmp_path), [want], rtol=0, atol=0)


QLINEAR_MATMUL = ["uint8_tensor", "int8_column", "uint8_batched"]


def qlinear_matmul(case: str) -> Op:
    rng = np.random.default_rng(40 + len(case))
    dt = np.int8 if case.startswith("int8") else np.uint8
    a_shape, b_shape = ((2, 4, 8), (2, 8, 5)) if case == "uint8_batched" else ((4, 8), (8, 5))
    a, b = ints(rng, a_shape, dt), ints(rng, b_shape, dt)
    per = (5,) if case == "int8_column" else ()
    consts = {
        "sa": scales(rng, ()),
        "za": ints(rng, (), dt),
        "sb": scales(rng, per),
        "zb": np.zeros(per, dt) if dt == np.int8 else ints(rng, per, dt),
        "sy": np.array(0.05, np.float32),
        "zy": ints(rng, (), dt),
    }
    return Op("QLinearMatMul", {"a": a, "b": b}, consts, 21, order=["a", "sa", "za", "b", "sb", "zb", "sy", "zy"])


@pytest.mark.parametrize("case", QLINEAR_MATMUL)
def test_qlinear_matmul(case, tmp_path):
    check(qlinear_matmul(case), tmp_path)


def test_qlinear_matmul_runtime_params(tmp_path):
    """Every scale and zero point fed at run time (opset 10)."""
    rng = np.random.default_rng(45)
    feeds = {
        "a": ints(rng, (3, 6), np.uint8),
        "sa": np.array(0.02, np.float32),
        "za": np.array(120, np.uint8),
        "b": ints(rng, (6, 4), np.uint8),
        "sb": np.array(0.03, np.float32),
        "zb": np.array(130, np.uint8),
        "sy": np.array(0.1, np.float32),
        "zy": np.array(125, np.uint8),
    }
    check(Op("QLinearMatMul", feeds, {}, 10), tmp_path)


# ---- ConvInteger / QLinearConv -----------------------------------------------------------------------------

CONV_INTEGER = ["zero_points_pads", "no_zero_points", "grouped_strided"]


def conv_integer(case: str) -> Op:
    rng = np.random.default_rng(50 + len(case))
    attrs, consts = {}, {}
    x, w = ints(rng, (2, 4, 7, 6), np.uint8), ints(rng, (3, 4, 3, 3), np.uint8)
    if case == "zero_points_pads":
        consts = {"zx": np.array(128, np.uint8), "zw": np.array(100, np.uint8)}
        attrs = {"pads": [1, 1, 1, 1]}
    elif case == "grouped_strided":
        w = ints(rng, (4, 2, 3, 2), np.uint8)
        consts = {"zx": np.array(3, np.uint8)}
        attrs = {"group": 2, "strides": [2, 1], "auto_pad": "SAME_UPPER"}
    return Op("ConvInteger", {"x": x}, {"w": w, **consts}, 10, attrs)


@pytest.mark.parametrize("case", CONV_INTEGER)
def test_conv_integer(case, tmp_path):
    check(conv_integer(case), tmp_path)


QLINEAR_CONV = ["uint8_tensor", "int8_channel_bias", "uint8_channel_1d"]


def qlinear_conv(case: str) -> Op:
    rng = np.random.default_rng(60 + len(case))
    xt = np.int8 if case.startswith("int8") else np.uint8
    if case == "uint8_channel_1d":
        x, w, attrs = ints(rng, (1, 3, 11), xt), (4, 3, 3), {"pads": [1, 1]}
    else:
        x, w, attrs = ints(rng, (2, 3, 6, 6), xt), (4, 3, 3, 3), {"pads": [1, 0, 1, 0]}
    w = s8_weights(rng, w) if xt == np.uint8 else ints(rng, w, np.int8)
    per = () if case == "uint8_tensor" else (4,)
    consts = {
        "sx": np.array(0.02, np.float32),
        "zx": ints(rng, (), xt),
        "w": w,
        "sw": scales(rng, per),
        "zw": np.zeros(per, np.int8),
        "sy": np.array(0.15, np.float32),
        "zy": ints(rng, (), xt),
    }
    order = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"]
    if case == "int8_channel_bias":
        consts["bias"] = rng.integers(-2000, 2000, (4,)).astype(np.int32)
        order.append("bias")
    return Op("QLinearConv", {"x": x}, consts, 10, attrs, order)


@pytest.mark.parametrize("case", QLINEAR_CONV)
def test_qlinear_conv(case, tmp_path):
    check(qlinear_conv(case), tmp_path)


# ---- the numpy references ----------------------------------------------------------------------------------

FOLDED = [
    (quantize, "blocked_int8"),
    (quantize, "axis_int8"),
    (dequantize, "blocked"),
    (dequantize, "axis_uint8"),
    (dynamic_quantize, 5.0),
    (matmul_integer, "uint8_int8_column"),
    (qlinear_matmul, "int8_column"),
    (conv_integer, "grouped_strided"),
    (qlinear_conv, "int8_channel_bias"),
]


@pytest.mark.parametrize("build, case", FOLDED, ids=[f"{b.__name__}-{c}" for b, c in FOLDED])
def test_reference_folds_constant_inputs(build, case, tmp_path):
    """With every input constant the op is computed at compile time by its numpy reference: no kernel is left."""
    op = build(case)
    check(op, tmp_path, atol=1e-6 if op.op == "DequantizeLinear" else 1e-7, fold=True)
    assert op.op.lower() not in (tmp_path / "model.c").read_text()


# ---- the CUDA target ---------------------------------------------------------------------------------------


def quant_pipeline() -> onnx.ModelProto:
    """Every quantization op in one model: dynamic quantization, QLinearConv, ConvInteger, per-axis and blocked
    dequantization, QLinearMatMul and MatMulInteger."""
    rng = np.random.default_rng(70)
    consts = {
        "w": s8_weights(rng, (4, 3, 3, 3)),
        "sw": scales(rng, (4,)),
        "zw": np.zeros(4, np.int8),
        "sy": np.array(0.1, np.float32),
        "zy": np.array(128, np.uint8),
        "bias": rng.integers(-500, 500, (4,)).astype(np.int32),
        "wi": ints(rng, (2, 3, 2, 2), np.uint8),
        "zwi": np.array(7, np.uint8),
        "sq": scales(rng, (4,)),
        "zq": ints(rng, (4,), np.int8),
        "sb": scales(rng, (2, 4, 6, 3)),
        "m": ints(rng, (30, 6), np.uint8),
        "sm": scales(rng, (6,)),
        "zm": ints(rng, (6,), np.uint8),
        "shape": np.array([8, 30], np.int64),
        "mi": s8_weights(rng, (6, 3)),
    }
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("QLinearConv", ["xq", "xs", "xz", "w", "sw", "zw", "sy", "zy", "bias"], ["c"], pads=[1] * 4),
        helper.make_node("ConvInteger", ["xq", "wi", "xz", "zwi"], ["ci"]),
        helper.make_node("DequantizeLinear", ["c", "sy", "zy"], ["cf"]),
        helper.make_node("QuantizeLinear", ["cf", "sq", "zq"], ["cq"], axis=1),
        helper.make_node("DequantizeLinear", ["cq", "sb"], ["cb"], axis=3, block_size=2),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("QLinearMatMul", ["r", "sy", "zy", "m", "sm", "zm", "sy", "zy"], ["mm"]),
        helper.make_node("MatMulInteger", ["mm", "mi", "zy"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "quant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 5])],
        [helper.make_empty_tensor_value_info(o) for o in ("y", "cb", "ci")],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_quant_pipeline_matches_onnxruntime(tmp_path):
    x = np.random.default_rng(71).standard_normal((2, 3, 6, 5)).astype(np.float32)
    m = quant_pipeline()
    assert_close(run_mlcc(m, {"x": x}, tmp_path), run_ort(m, {"x": x}), rtol=1e-6, atol=1e-6)


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, _ = compile_cuda_strictly(quant_pipeline(), tmp_path)
    assert "cudaGraphLaunch" in source and "static __global__ void" in source
