"""Quantization for the 8- and 16-bit integer types: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv.

Everything lowers to existing kernel families. (De)quantization is elementwise, its scale and zero point read
per tensor, per axis or (on the "indexed" family) per block of `block_size` elements along the axis.
DynamicQuantizeLinear runs the ReduceMin/ReduceMax kernels first. The integer products widen each operand to
int32 with its zero point subtracted, run the int32 kernels of MatMul and Conv (padding is then the zero
point, as ONNX defines it) and requantize the int32 accumulator elementwise. Rounding is half to even (rint);
results saturate to the output type's range.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import (
    BY_ONNX,
    F4E2M1,
    FLOAT8,
    FLOAT32,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    SUB_BYTE_INTS,
    UINT8,
    UINT16,
    DType,
)
from ..ir.graph import Node, Value
from .common import (
    STORAGE_CONVERT,
    Shape,
    broadcast_shapes,
    broadcast_strides,
    c_literal,
    cast_array,
    contiguous_strides,
    convert_expr,
    loop_kernel,
    need_input,
    norm_axis,
    require_c,
)
from .indexed import flat, indexed_kernel
from .registry import ONNX_DOMAIN, Kernel, OpDef, lookup, register

QUANTIZED = (INT8, UINT8, INT16, UINT16, *SUB_BYTE_INTS)  # the integer types QuantizeLinear produces
NARROW_FLOATS = (*FLOAT8, F4E2M1)  # y = x / y_scale converted (float4: + y_zero_point), as ONNX's reference
DEQUANTIZABLE = QUANTIZED + (INT32,) + NARROW_FLOATS  # narrow floats: y = float(x) * x_scale, no zero point
EIGHT_BIT = (INT8, UINT8)  # the operand types of the integer products
QDQ_VERSIONS = [10, 13, 19, 21, 23, 24, 25, 28]


def _check_type(node: Node, v: Value, allowed: Sequence[DType], what: str) -> None:
    if v.dtype not in allowed:
        raise UnsupportedError(
            f"{node.op} {node.name!r}: {what} of element type {v.dtype} is not supported "
            f"(supported: {', '.join(d.name for d in allowed)})"
        )


def _clamp(expr: str, dtype: DType, wide: DType) -> str:
    """`expr` (a `wide` float) saturated to the range of the integer `dtype`."""
    info = ml_dtypes.iinfo(dtype.np)
    f = "f" if wide == FLOAT32 else ""
    return f"fmin{f}(fmax{f}({expr}, {c_literal(int(info.min), wide)}), {c_literal(int(info.max), wide)})"


def _np_saturate(q: np.ndarray, dtype: DType) -> np.ndarray:
    info = ml_dtypes.iinfo(dtype.np)
    return np.clip(q, info.min, info.max).astype(dtype.np)


def _derived(v: Value, dtype: DType, role: str) -> Value:
    """A value computed inside one op's lowering (a widened operand, an accumulator)."""
    return Value(f"{v.name}:{role}", dtype, v.shape)


def _delegate(op: str, version: int, node: Node, inputs, outputs, attrs=None) -> tuple[OpDef, Node]:
    """The registry entry of `op` and a node of it over `inputs`, to reuse its inference and lowering."""
    entry = lookup(op, ONNX_DOMAIN, version)
    assert entry is not None, op
    return entry, Node(op, list(inputs), list(outputs), dict(attrs or {}), name=node.name, version=version)


# ---- QuantizeLinear / DequantizeLinear: per tensor, per axis, blocked ------------------------------------


def _layout(node: Node, x: Value, scale: Value, zero: Value | None) -> tuple[int, int]:
    """(axis, block) of a (de)quantization's scale: axis -1 per tensor, block 0 per axis."""
    if zero is not None and zero.shape != scale.shape and not zero.size == scale.size == 1:
        raise ShapeError(
            f"{node.op} {node.name!r}: zero point {list(zero.shape)} and scale {list(scale.shape)} differ in shape"
        )
    if scale.size == 1:
        return -1, 0
    axis = norm_axis(node, node.attr("axis", 1), x.rank)
    block = int(node.attr("block_size", 0) or 0)
    if block < 0:
        raise ModelError(f"{node.op} {node.name!r}: block_size must not be negative")
    if block == 0:
        if scale.shape != (x.shape[axis],):
            raise ShapeError(
                f"{node.op} {node.name!r}: per-axis scale {list(scale.shape)} should be [{x.shape[axis]}] "
                f"(axis {axis} of {list(x.shape)})"
            )
        return axis, 0
    want = tuple(-(-d // block) if a == axis else d for a, d in enumerate(x.shape))
    if scale.shape != want:
        raise ShapeError(
            f"{node.op} {node.name!r}: blocked scale {list(scale.shape)} should be {list(want)} "
            f"(block_size {block} along axis {axis} of {list(x.shape)})"
        )
    return axis, block


def _np_layout(p: np.ndarray, shape: Shape, axis: int, block: int) -> np.ndarray:
    """A scale or zero point as an array that broadcasts to `shape`."""
    if axis < 0:
        return p.reshape(())
    if not block:
        return p.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)


def _qdq_kernel(node: Node, x: Value, params: list[Value], y: Value, expr: str, axis: int, block: int) -> Kernel:
    """y = expr over v0 (x) and v1, v2, ... (`params`, laid out as _layout says), element for element."""
    require_c(node, x, *params, y)
    if block:
        lets = [f"const {x.dtype.c} v0 = in0[out];"]
        for i, p in enumerate(params, 1):
            terms = [
                (f"(o{a} / {block})" if a == axis else f"o{a}", s) for a, s in enumerate(contiguous_strides(p.shape))
            ]
            lets.append(f"const {p.dtype.c} v{i} = in{i}[{flat(terms)}];")
        return indexed_kernel(node, [x, *params], y, expr, lets)
    view = () if axis < 0 else tuple(x.shape[a] if a == axis else 1 for a in range(x.rank))
    strides = [contiguous_strides(x.shape)] + [broadcast_strides(view, x.shape) for _ in params]
    return loop_kernel(node.op.lower(), [x, *params], y, expr, x.shape, strides)


def _wide(v: Value, name: str) -> str:
    """The C value of operand `name` of `v`'s type, widened to a number where it is stored as bits."""
    return f"{STORAGE_CONVERT[v.dtype.name][0]}({name})" if v.dtype.storage_only else name


def _quantized_type(node: Node, zero: Value | None) -> DType:
    code = node.attr("output_dtype", 0)
    if code and code not in BY_ONNX:
        raise UnsupportedError(f"{node.op} {node.name!r}: output_dtype {code} is not supported")
    if zero is not None:
        if code and BY_ONNX[code] != zero.dtype:
            raise ModelError(f"{node.op} {node.name!r}: output_dtype {BY_ONNX[code]} disagrees with y_zero_point")
        return zero.dtype
    return BY_ONNX[code] if code else UINT8


def _precision(node: Node) -> DType | None:
    code = node.attr("precision", 0)
    if not code:
        return None
    if BY_ONNX.get(code) not in (FLOAT32, FLOAT64) and not (code in BY_ONNX and BY_ONNX[code].storage_only):
        raise UnsupportedError(f"{node.op} {node.name!r}: precision {code} is not supported")
    return BY_ONNX[code]


def _quotient(x: DType, scale: DType, precision: DType | None) -> tuple[str, DType]:
    """C text of x / scale (v0 / v1) as numpy computes it, and the float type it is in."""
    if precision is None:
        if x == scale == FLOAT32:
            return "v0 / v1", FLOAT32
        return "(double)v0 / (double)v1", FLOAT64
    if precision.storage_only:  # a float32 quotient of rounded operands, rounded once: the narrow quotient
        widen, narrow = STORAGE_CONVERT[precision.name]

        def rnd(e: str) -> str:
            return f"{widen}({narrow}((double)({e})))"

        return rnd(f"{rnd('v0')} / {rnd('v1')}"), FLOAT32
    return f"({precision.c})v0 / ({precision.c})v1", precision


@register("QuantizeLinear", since=QDQ_VERSIONS)
class QuantizeLinear(OpDef):
    """y = saturate(rint(x / y_scale) + y_zero_point); for the float8 types y = x / y_scale converted to y's
    type (saturating unless saturate=0), the zero point (0) ignored, and for float4 y = x / y_scale +
    y_zero_point converted, as ONNX's reference does."""

    def _operands(self, node: Node) -> tuple[Value, Value, Value | None]:
        x, scale, zero = need_input(node, 0), need_input(node, 1), node.input(2)
        if not x.dtype.is_float and x.dtype != INT32:
            raise UnsupportedError(f"QuantizeLinear {node.name!r}: input of element type {x.dtype} is not supported")
        if not scale.dtype.is_float and scale.dtype != INT32:
            raise UnsupportedError(
                f"QuantizeLinear {node.name!r}: scale of element type {scale.dtype} is not supported"
            )
        return x, scale, zero

    def infer(self, node):
        x, scale, zero = self._operands(node)
        _layout(node, x, scale, zero)
        _precision(node)
        out = _quantized_type(node, zero)
        if out not in QUANTIZED + NARROW_FLOATS:
            raise UnsupportedError(f"QuantizeLinear {node.name!r}: output element type {out} is not supported")
        return [(out, x.shape)]

    def reference(self, node, inputs):
        x, scale, zero = self._operands(node)
        axis, block = _layout(node, x, scale, zero)
        xs, ss = inputs[0], _np_layout(inputs[1], x.shape, axis, block)
        precision = _precision(node)
        with np.errstate(all="ignore"):
            q = xs.astype(precision.np) / ss.astype(precision.np) if precision else xs / ss
            out = _quantized_type(node, zero)
            if out == F4E2M1 and zero is not None:
                q = q + inputs[2].astype(np.float32)
            if out in NARROW_FLOATS:
                return [cast_array(q, out, bool(node.attr("saturate", 1)))]
            q = np.rint(q).astype(np.float64)
            if zero is not None:
                q = q + _np_layout(inputs[2], x.shape, axis, block)
            return [_np_saturate(q, _quantized_type(node, zero))]

    def lower(self, node):
        x, scale, zero = self._operands(node)
        axis, block = _layout(node, x, scale, zero)
        y = node.outputs[0]
        q, wide = _quotient(x.dtype, scale.dtype, _precision(node))
        if y.dtype in NARROW_FLOATS:
            params = [scale]
            if y.dtype == F4E2M1 and zero is not None:  # float8 zero points are 0 and not read
                q, params = f"{q} + {_wide(zero, 'v2')}", [scale, zero]
            expr = convert_expr(f"({q})", wide, y.dtype, bool(node.attr("saturate", 1)))
            return [_qdq_kernel(node, x, params, y, expr, axis, block)]
        f = "f" if wide == FLOAT32 else ""
        expr = f"rint{f}({q})" + (f" + ({wide.c}){_wide(zero, 'v2')}" if zero is not None else "")
        params = [scale] + ([zero] if zero is not None else [])
        expr = _clamp(expr, y.dtype, wide)
        if y.dtype in SUB_BYTE_INTS:  # stored as the low bits of a byte
            expr = convert_expr(expr, wide, y.dtype)
        return [_qdq_kernel(node, x, params, y, expr, axis, block)]


@register("DequantizeLinear", since=QDQ_VERSIONS)
class DequantizeLinear(OpDef):
    """y = (x - x_zero_point) * x_scale."""

    def _operands(self, node: Node) -> tuple[Value, Value, Value | None]:
        x, scale, zero = need_input(node, 0), need_input(node, 1), node.input(2)
        _check_type(node, x, DEQUANTIZABLE, "input")
        if not scale.dtype.is_float:
            raise UnsupportedError(
                f"DequantizeLinear {node.name!r}: scale of element type {scale.dtype} is not supported"
            )
        if zero is not None and zero.dtype != x.dtype:
            raise ModelError(f"DequantizeLinear {node.name!r}: x is {x.dtype} but x_zero_point is {zero.dtype}")
        if x.dtype in NARROW_FLOATS and zero is not None:  # must be 0 (checked where known), and not read
            if zero.is_const and np.any(zero.data.astype(np.float32) != 0) and x.dtype != F4E2M1:
                raise ModelError(f"DequantizeLinear {node.name!r}: a float8 x_zero_point must be 0")
            zero = None
        return x, scale, zero

    def _out(self, node: Node, scale: Value) -> DType:
        code = node.attr("output_dtype", 0)
        if code and code not in BY_ONNX:
            raise UnsupportedError(f"DequantizeLinear {node.name!r}: output_dtype {code} is not supported")
        return BY_ONNX[code] if code else scale.dtype

    def infer(self, node):
        x, scale, zero = self._operands(node)
        _layout(node, x, scale, zero)
        return [(self._out(node, scale), x.shape)]

    def reference(self, node, inputs):
        x, scale, zero = self._operands(node)
        axis, block = _layout(node, x, scale, zero)
        dx = inputs[0].astype(np.float32)
        if zero is not None:  # (None for float8)
            dx = dx - _np_layout(inputs[2], x.shape, axis, block)
        y = dx * _np_layout(inputs[1], x.shape, axis, block)
        return [y.astype(self._out(node, scale).np)]

    def lower(self, node):
        x, scale, zero = self._operands(node)
        axis, block = _layout(node, x, scale, zero)
        if zero is None:
            expr = f"({scale.dtype.c}){_wide(x, 'v0')} * v1"
        elif x.dtype == INT32:  # numpy: float32(x) - int32 zero point is a float64 difference
            expr = "((double)(float)v0 - (double)v2) * (double)v1"
        else:
            expr = f"(({scale.dtype.c}){_wide(x, 'v0')} - ({scale.dtype.c}){_wide(zero, 'v2')}) * v1"
        params = [scale] + ([zero] if zero is not None else [])
        return [_qdq_kernel(node, x, params, node.outputs[0], expr, axis, block)]


@register("DynamicQuantizeLinear", since=[11])
class DynamicQuantizeLinear(OpDef):
    """uint8 quantization with a scale and zero point from the range of x widened to include 0:
    y_scale = (max - min) / 255 (1/255 when max == min), y_zero_point = saturate(rint(-min / y_scale))."""

    def infer(self, node):
        x = need_input(node, 0)
        if x.dtype != FLOAT32:
            raise UnsupportedError(f"DynamicQuantizeLinear {node.name!r}: element type {x.dtype} is not supported")
        return [(UINT8, x.shape), (FLOAT32, ()), (UINT8, ())]

    def reference(self, node, inputs):
        x = inputs[0]
        hi = np.float32(max(0.0, float(np.max(x, initial=0.0))))
        lo = np.float32(min(0.0, float(np.min(x, initial=0.0))))
        scale = np.float32(1.0 if hi == lo else hi - lo) / np.float32(255)
        zero = np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))
        y = _np_saturate(np.rint(x / scale) + zero, UINT8)
        return [y, np.array(scale, np.float32), np.array(zero, np.uint8)]

    def lower(self, node):
        x = node.inputs[0]
        y, scale, zero = (node.outputs + [None, None])[:3]
        scale = scale if scale is not None else Value(f"{y.name}:scale", FLOAT32, ())
        zero = zero if zero is not None else Value(f"{y.name}:zero", UINT8, ())
        require_c(node, x)
        kernels = []
        extremes = []
        for op in ("ReduceMin", "ReduceMax"):
            v = Value(f"{x.name}:{op}", FLOAT32, ())
            entry, reduce = _delegate(op, 13, node, [x], [v], {"keepdims": 0})
            kernels += entry.lower(reduce)
            extremes.append(v)
        lo, hi = "(v0 < 0.0f ? v0 : 0.0f)", "(v1 > 0.0f ? v1 : 0.0f)"
        name = node.op.lower()
        kernels.append(
            loop_kernel(name, extremes, scale, f"({hi} == {lo} ? 1.0f : {hi} - {lo}) / 255.0f", [], [[], []])
        )
        zero_expr = f"rintf({_clamp(f'0.0f - {lo} / v1', UINT8, FLOAT32)})"
        kernels.append(loop_kernel(name, [extremes[0], scale], zero, zero_expr, [], [[], []]))
        y_expr = _clamp("rintf(v0 / v1) + (float)v2", UINT8, FLOAT32)
        kernels.append(loop_kernel(name, [x, scale, zero], y, y_expr, [x.size], [[1], [0], [0]]))
        return kernels


# ---- MatMulInteger / QLinearMatMul --------------------------------------------------------------------------


def _matmul_view(node: Node, p: Value, operand: Value, side: str) -> Shape:
    """The shape a zero point or scale of matmul operand `operand` broadcasts from: a scalar, a vector per row
    of A (side "a": read as [M, 1]) or per column of B (side "b": [N]), or its own N-D shape."""
    if p.size == 1:
        return ()
    if p.rank == 1 and operand.rank >= 2:
        view = (p.size, 1) if side == "a" else (p.size,)
    else:
        view = p.shape
    if operand.rank < 2 or broadcast_shapes(node, view, operand.shape) != operand.shape:
        raise ShapeError(
            f"{node.op} {node.name!r}: {list(p.shape)} is neither a scalar nor per "
            f"{'row' if side == 'a' else 'column'} of {list(operand.shape)}"
        )
    return view


def _widen(node: Node, v: Value, zero: Value | None, view: Shape) -> tuple[Value, Kernel]:
    """v as int32 with its zero point (read as `view`, broadcast to v) subtracted: the value and its kernel."""
    wide = _derived(v, INT32, "i32")
    require_c(node, v, zero)
    if zero is None:
        return wide, loop_kernel(node.op.lower(), [v], wide, "(int32_t)v0", [v.size], [[1]])
    strides = [contiguous_strides(v.shape), broadcast_strides(view, v.shape)]
    return wide, loop_kernel(node.op.lower(), [v, zero], wide, "(int32_t)v0 - (int32_t)v1", v.shape, strides)


def _np_widen(x: np.ndarray, zero: np.ndarray | None, view: Shape) -> np.ndarray:
    out = x.astype(np.int32)
    return out if zero is None else out - zero.astype(np.int32).reshape(view)


def _requantize(node: Node, acc: Value, scales: list[tuple[Value, Shape]], zero: Value | None, y: Value) -> Kernel:
    """y = saturate(rint(acc * (s0 * s1 / s2)) + zero), the scales read from their views broadcast to y (numpy
    multiplies the int32 accumulator by the float32 scale in float64)."""
    values = [acc] + [s for s, _ in scales] + ([zero] if zero is not None else [])
    views = [acc.shape] + [view for _, view in scales] + ([()] if zero is not None else [])
    require_c(node, *values, y)
    expr = "rint((double)v0 * (double)(v1 * v2 / v3))" + (" + (double)v4" if zero is not None else "")
    strides = [broadcast_strides(view, y.shape) for view in views]
    return loop_kernel(node.op.lower(), values, y, _clamp(expr, y.dtype, FLOAT64), y.shape, strides)


def _np_requantize(acc: np.ndarray, scales: list[np.ndarray], zero: np.ndarray | None, dtype: DType) -> np.ndarray:
    factor = scales[0] * scales[1] / scales[2]
    q = np.rint(acc.astype(np.float64) * factor.astype(np.float64))
    return _np_saturate(q if zero is None else q + zero.reshape(()).astype(np.float64), dtype)


def _per_tensor(node: Node, *values: Value | None) -> None:
    for v in values:
        if v is not None and v.size != 1:
            raise UnsupportedError(f"{node.op} {node.name!r}: {list(v.shape)} must be a per-tensor (scalar) value")


class IntegerMatMul(OpDef):
    """Shared by MatMulInteger and QLinearMatMul: operand positions, zero-point views, the widened product."""

    a_at, b_at = 0, 1  # input positions of A and B
    a_zero_at, b_zero_at = 2, 3

    def operands(self, node: Node) -> tuple[Value, Value, Value | None, Value | None]:
        a, b = need_input(node, self.a_at), need_input(node, self.b_at)
        _check_type(node, a, EIGHT_BIT, "A")
        _check_type(node, b, EIGHT_BIT, "B")
        za, zb = node.input(self.a_zero_at), node.input(self.b_zero_at)
        for v, z in ((a, za), (b, zb)):
            if z is not None and z.dtype != v.dtype:
                raise ModelError(f"{node.op} {node.name!r}: a zero point is {z.dtype} but its operand is {v.dtype}")
        return a, b, za, zb

    def product_shape(self, node: Node) -> Shape:
        a, b, _, _ = self.operands(node)
        entry, mm = _delegate("MatMul", 13, node, [_derived(a, INT32, "i32"), _derived(b, INT32, "i32")], [])
        return entry.infer(mm)[0][1]

    def np_product(self, node: Node, inputs) -> np.ndarray:
        a, b, za, zb = self.operands(node)
        av = _np_widen(inputs[self.a_at], inputs[self.a_zero_at], _matmul_view(node, za, a, "a") if za else ())
        bv = _np_widen(inputs[self.b_at], inputs[self.b_zero_at], _matmul_view(node, zb, b, "b") if zb else ())
        return np.matmul(av, bv).astype(np.int32)

    def lower_product(self, node: Node, acc: Value) -> list[Kernel]:
        a, b, za, zb = self.operands(node)
        wa, ka = _widen(node, a, za, _matmul_view(node, za, a, "a") if za else ())
        wb, kb = _widen(node, b, zb, _matmul_view(node, zb, b, "b") if zb else ())
        entry, mm = _delegate("MatMul", 13, node, [wa, wb], [acc])
        return [ka, kb, *entry.lower(mm)]


@register("MatMulInteger", since=[10])
class MatMulInteger(IntegerMatMul):
    """Y = (A - a_zero_point) @ (B - b_zero_point), accumulated in int32."""

    def infer(self, node):
        return [(INT32, self.product_shape(node))]

    def reference(self, node, inputs):
        padded = list(inputs) + [None] * (4 - len(inputs))
        return [self.np_product(node, padded)]

    def lower(self, node):
        return self.lower_product(node, node.outputs[0])


@register("QLinearMatMul", since=[10, 21])
class QLinearMatMul(IntegerMatMul):
    """y = saturate(rint((a - a_zero_point) @ (b - b_zero_point) * a_scale * b_scale / y_scale) + y_zero_point)."""

    a_at, b_at = 0, 3
    a_zero_at, b_zero_at = 2, 5

    def _scales(self, node: Node) -> list[Value]:
        scales = [need_input(node, i) for i in (1, 4, 6)]
        for s in scales:
            if not s.dtype.is_float:
                raise UnsupportedError(f"QLinearMatMul {node.name!r}: scale of element type {s.dtype} is not supported")
        _per_tensor(node, scales[2], node.input(7))
        return scales

    def _out(self, node: Node) -> DType:
        zero = node.input(7)
        if zero is not None:
            _check_type(node, zero, EIGHT_BIT, "y_zero_point")
            return zero.dtype
        return need_input(node, 0).dtype

    def infer(self, node):
        self._scales(node)
        return [(self._out(node), self.product_shape(node))]

    def reference(self, node, inputs):
        padded = list(inputs) + [None] * (8 - len(inputs))
        a, b, _, _ = self.operands(node)
        sa, sb, sy = self._scales(node)
        scales = [
            padded[1].reshape(_matmul_view(node, sa, a, "a")),
            padded[4].reshape(_matmul_view(node, sb, b, "b")),
            padded[6].reshape(()),
        ]
        return [_np_requantize(self.np_product(node, padded), scales, padded[7], self._out(node))]

    def lower(self, node):
        a, b, _, _ = self.operands(node)
        sa, sb, sy = self._scales(node)
        y = node.outputs[0]
        acc = _derived(y, INT32, "acc")
        scales = [(sa, _matmul_view(node, sa, a, "a")), (sb, _matmul_view(node, sb, b, "b")), (sy, ())]
        return [*self.lower_product(node, acc), _requantize(node, acc, scales, node.input(7), y)]


# ---- ConvInteger / QLinearConv ----------------------------------------------------------------------------


def _channel_view(node: Node, p: Value | None, channels: int, rank: int, axis: int) -> Shape:
    """A conv zero point or scale: a scalar, or one per output channel read along `axis` of a rank-`rank` tensor."""
    if p is None or p.size == 1:
        return ()
    if p.shape != (channels,):
        raise ShapeError(f"{node.op} {node.name!r}: {list(p.shape)} is neither a scalar nor one per output channel")
    return tuple(channels if a == axis else 1 for a in range(rank))


class IntegerConv(OpDef):
    """Shared by ConvInteger and QLinearConv: operand positions, zero points, the widened convolution."""

    x_at, w_at = 0, 1
    x_zero_at, w_zero_at = 2, 3
    bias_at: int | None = None

    def operands(self, node: Node) -> tuple[Value, Value, Value | None, Value | None]:
        x, w = need_input(node, self.x_at), need_input(node, self.w_at)
        _check_type(node, x, EIGHT_BIT, "x")
        _check_type(node, w, EIGHT_BIT, "w")
        zx, zw = node.input(self.x_zero_at), node.input(self.w_zero_at)
        for v, z in ((x, zx), (w, zw)):
            if z is not None and z.dtype != v.dtype:
                raise ModelError(f"{node.op} {node.name!r}: a zero point is {z.dtype} but its operand is {v.dtype}")
        _per_tensor(node, zx)
        _channel_view(node, zw, w.shape[0], w.rank, 0)
        return x, w, zx, zw

    def _bias(self, node: Node) -> Value | None:
        bias = node.input(self.bias_at) if self.bias_at is not None else None
        if bias is not None:
            _check_type(node, bias, (INT32,), "B")
        return bias

    def conv(self, node: Node, x: Value, w: Value, outputs: list[Value], bias: Value | None = None):
        inputs = [x, w] + ([bias] if bias is not None else [])
        return _delegate("Conv", 11, node, inputs, outputs, node.attrs)

    def product_shape(self, node: Node) -> Shape:
        x, w, _, _ = self.operands(node)
        entry, conv = self.conv(node, _derived(x, FLOAT32, "f32"), _derived(w, FLOAT32, "f32"), [])
        return entry.infer(conv)[0][1]

    def np_product(self, node: Node, inputs) -> np.ndarray:
        x, w, _, zw = self.operands(node)
        xv = _np_widen(inputs[self.x_at], inputs[self.x_zero_at], ())
        wv = _np_widen(inputs[self.w_at], inputs[self.w_zero_at], _channel_view(node, zw, w.shape[0], w.rank, 0))
        bias = inputs[self.bias_at] if self.bias_at is not None else None
        entry, conv = self.conv(node, _derived(x, INT32, "i32"), _derived(w, INT32, "i32"), [], self._bias(node))
        return entry.reference(conv, [xv, wv] + ([bias] if bias is not None else []))[0].astype(np.int32)

    def lower_product(self, node: Node, acc: Value) -> list[Kernel]:
        x, w, zx, zw = self.operands(node)
        wx, kx = _widen(node, x, zx, ())
        ww, kw = _widen(node, w, zw, _channel_view(node, zw, w.shape[0], w.rank, 0))
        entry, conv = self.conv(node, wx, ww, [acc], self._bias(node))
        return [kx, kw, *entry.lower(conv)]


@register("ConvInteger", since=[10])
class ConvInteger(IntegerConv):
    """y = conv(x - x_zero_point, w - w_zero_point), accumulated in int32."""

    def infer(self, node):
        return [(INT32, self.product_shape(node))]

    def reference(self, node, inputs):
        return [self.np_product(node, list(inputs) + [None] * (4 - len(inputs)))]

    def lower(self, node):
        return self.lower_product(node, node.outputs[0])


@register("QLinearConv", since=[10])
class QLinearConv(IntegerConv):
    """y = saturate(rint((conv(x - x_zero_point, w - w_zero_point) + B) * x_scale * w_scale / y_scale)
    + y_zero_point)."""

    x_at, w_at = 0, 3
    x_zero_at, w_zero_at = 2, 5
    bias_at = 8

    def _scales(self, node: Node) -> list[Value]:
        scales = [need_input(node, i) for i in (1, 4, 6)]
        for s in scales:
            if not s.dtype.is_float:
                raise UnsupportedError(f"QLinearConv {node.name!r}: scale of element type {s.dtype} is not supported")
        _per_tensor(node, scales[0], scales[2], node.input(7))
        return scales

    def _out(self, node: Node) -> DType:
        zero = node.input(7)
        if zero is not None:
            _check_type(node, zero, EIGHT_BIT, "y_zero_point")
            return zero.dtype
        return need_input(node, 0).dtype

    def infer(self, node):
        self._scales(node)
        self._bias(node)
        return [(self._out(node), self.product_shape(node))]

    def reference(self, node, inputs):
        padded = list(inputs) + [None] * (9 - len(inputs))
        w = need_input(node, 3)
        _, sw, _ = self._scales(node)
        scales = [
            padded[1].reshape(()),
            padded[4].reshape(_channel_view(node, sw, w.shape[0], w.rank, 1)),
            padded[6].reshape(()),
        ]
        return [_np_requantize(self.np_product(node, padded), scales, padded[7], self._out(node))]

    def lower(self, node):
        w, y = need_input(node, 3), node.outputs[0]
        sx, sw, sy = self._scales(node)
        acc = _derived(y, INT32, "acc")
        scales = [(sx, ()), (sw, _channel_view(node, sw, w.shape[0], y.rank, 1)), (sy, ())]
        return [*self.lower_product(node, acc), _requantize(node, acc, scales, node.input(7), y)]
