"""Elementwise ops with numpy broadcasting: arithmetic, activations, Clip, Cast, Identity, Dropout."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import BOOL, BY_ONNX, DType
from ..ir.graph import Node, Value
from .common import (
    broadcast_shapes,
    broadcast_strides,
    c_literal,
    cast_array,
    cast_mode,
    cmath,
    convert_expr,
    logistic_den,
    loop_kernel,
    require_c,
)
from .registry import Kernel, OpDef, register


def broadcast_kernel(node: Node, inputs: Sequence[Value], out: Value, expr: str) -> Kernel:
    """out = expr(v0..vn) with every input broadcast to out's shape."""
    require_c(node, *inputs, out)
    strides = [broadcast_strides(v.shape, out.shape) for v in inputs]
    return loop_kernel(node.op.lower(), inputs, out, expr, out.shape, strides)


def _same_dtype(node: Node, values: Sequence[Value]) -> DType:
    dtypes = {v.dtype for v in values}
    if len(dtypes) != 1:
        raise ModelError(f"{node.op} {node.name!r}: inputs have different element types {sorted(map(str, dtypes))}")
    return values[0].dtype


class Variadic(OpDef):
    """Ops over all inputs with broadcasting; `expr2` folds two operands, `np_fn` is the reference."""

    kinds = ("float", "int", "uint")
    np_fn: Callable = np.add

    def expr2(self, a: str, b: str, dtype: DType) -> str:
        raise NotImplementedError

    def operands(self, node: Node) -> list[Value]:
        values = [v for v in node.inputs if v is not None]
        if not values:
            raise ModelError(f"{node.op} {node.name!r}: needs at least one input")
        return values

    def infer(self, node):
        values = self.operands(node)
        dtype = _same_dtype(node, values)
        if dtype.kind not in self.kinds:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {dtype} is not supported")
        return [(dtype, broadcast_shapes(node, *(v.shape for v in values)))]

    def reference(self, node, inputs):
        values = [x for x in inputs if x is not None]
        out = values[0]
        for x in values[1:]:
            out = self.np_fn(out, x)
        return [np.asarray(out).astype(values[0].dtype, copy=False)]

    def lower(self, node):
        values, out = self.operands(node), node.outputs[0]
        expr = "v0"
        for i in range(1, len(values)):
            expr = self.expr2(expr if i == 1 else f"({expr})", f"v{i}", out.dtype)
        return [broadcast_kernel(node, values, out, expr)]


@register("Add", since=[7, 13, 14])
class Add(Variadic):
    np_fn = np.add

    def expr2(self, a, b, dtype):
        return f"{a} + {b}"


@register("Sub", since=[7, 13, 14])
class Sub(Variadic):
    np_fn = np.subtract

    def expr2(self, a, b, dtype):
        return f"{a} - {b}"


@register("Mul", since=[7, 13, 14])
class Mul(Variadic):
    np_fn = np.multiply

    def expr2(self, a, b, dtype):
        return f"{a} * {b}"


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.floating):
        return a / b
    with np.errstate(divide="ignore"):
        q = np.where(b == 0, 0, np.floor_divide(a, np.where(b == 0, 1, b)))
        fix = (np.remainder(a, np.where(b == 0, 1, b)) != 0) & ((a < 0) != (b < 0))
    return (q + fix).astype(np.result_type(a, b))


@register("Div", since=[7, 13, 14])
class Div(Variadic):
    np_fn = staticmethod(_trunc_div)

    def expr2(self, a, b, dtype):
        # Integer division truncates toward zero (C and onnxruntime); x/0 gives 0 instead of a trap.
        return f"{a} / {b}" if dtype.is_float else f"({b} == 0 ? 0 : {a} / {b})"


def _max_expr(a: str, b: str, dtype: DType, op: str) -> str:
    if dtype.is_float:  # NaN in either operand propagates, as in numpy
        return f"(({a} {op} {b} || {a} != {a}) ? {a} : {b})"
    return f"({a} {op} {b} ? {a} : {b})"


@register("Max", since=[8, 12, 13])
class Max(Variadic):
    np_fn = np.maximum

    def expr2(self, a, b, dtype):
        return _max_expr(a, b, dtype, ">=")


@register("Min", since=[8, 12, 13])
class Min(Variadic):
    np_fn = np.minimum

    def expr2(self, a, b, dtype):
        return _max_expr(a, b, dtype, "<=")


@register("Sum", since=[8, 13])
class Sum(Variadic):
    kinds = ("float",)
    np_fn = np.add

    def expr2(self, a, b, dtype):
        return f"{a} + {b}"


@register("Mean", since=[8, 13])
class Mean(Variadic):
    kinds = ("float",)

    def reference(self, node, inputs):
        values = [x for x in inputs if x is not None]
        total = values[0]
        for x in values[1:]:
            total = total + x
        return [(total / len(values)).astype(values[0].dtype)]

    def lower(self, node):
        values, out = self.operands(node), node.outputs[0]
        expr = "(" + " + ".join(f"v{i}" for i in range(len(values))) + ")"
        return [broadcast_kernel(node, values, out, f"{expr} / {c_literal(len(values), out.dtype)}")]


@register("Pow", since=[7, 12, 13, 15])
class Pow(OpDef):
    def infer(self, node):
        x, y = node.inputs[0], node.inputs[1]
        if not (x.dtype.kind in ("float", "int") and y.dtype.kind in ("float", "int", "uint")):
            raise UnsupportedError(f"Pow {node.name!r}: element types {x.dtype}, {y.dtype} are not supported")
        return [(x.dtype, broadcast_shapes(node, x.shape, y.shape))]

    def reference(self, node, inputs):
        x, y = inputs
        out = np.power(x.astype(np.float64), y.astype(np.float64))
        return [out.astype(x.dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.inputs[1]
        out = node.outputs[0]
        if out.dtype.c == "float" and y.dtype.c == "float":
            expr = "powf(v0, v1)"
        else:
            expr = f"({out.dtype.c})pow((double)v0, (double)v1)"
        return [broadcast_kernel(node, [x, y], out, expr)]


class Unary(OpDef):
    """y = f(x) elementwise. `expr(node, dtype)` gives the C expression over v0."""

    kinds: tuple[str, ...] = ("float",)

    def infer(self, node):
        x = node.inputs[0]
        if x is None:
            raise ModelError(f"{node.op} {node.name!r}: input 0 is missing")
        if x.dtype.kind not in self.kinds:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {x.dtype} is not supported")
        return [(x.dtype, x.shape)]

    def np_fn(self, node: Node, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def expr(self, node: Node, dtype: DType) -> str:
        raise NotImplementedError

    def reference(self, node, inputs):
        with np.errstate(all="ignore"):
            return [np.asarray(self.np_fn(node, inputs[0])).astype(inputs[0].dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        return [broadcast_kernel(node, [x], y, self.expr(node, x.dtype))]


def _unary(op: str, since, c_fn: Callable[[Node, DType], str], np_fn: Callable, kinds=("float",)):
    """Register a Unary op from a C-expression builder and a numpy function of (node, x)."""

    cls = type(
        op, (Unary,), {"kinds": kinds, "expr": lambda self, n, t: c_fn(n, t), "np_fn": lambda self, n, x: np_fn(n, x)}
    )
    register(op, since=since)(cls)


def _lit(node: Node, key: str, default: float, dtype: DType) -> str:
    return c_literal(node.attr(key, default), dtype)


_erf = np.vectorize(math.erf, otypes=[np.float64])
_SIGNED = ("float", "int")

_unary(
    "Relu", [6, 13, 14], lambda n, t: f"(v0 < 0 ? {c_literal(0, t)} : v0)", lambda n, x: np.where(x < 0, 0, x), _SIGNED
)
_unary(
    "LeakyRelu",
    [6, 16],
    lambda n, t: f"(v0 < 0 ? {_lit(n, 'alpha', 0.01, t)} * v0 : v0)",
    lambda n, x: np.where(x < 0, np.float32(n.attr("alpha", 0.01)) * x, x),
)
_unary("Sigmoid", [6, 13], lambda n, t: f"1 / {logistic_den('v0', t)}", lambda n, x: 1 / (1 + np.exp(-x)))
_unary("Tanh", [6, 13], lambda n, t: f"{cmath('tanh', t)}(v0)", lambda n, x: np.tanh(x))
_unary("Exp", [6, 13], lambda n, t: f"{cmath('exp', t)}(v0)", lambda n, x: np.exp(x))
_unary("Log", [6, 13], lambda n, t: f"{cmath('log', t)}(v0)", lambda n, x: np.log(x))
_unary("Sqrt", [6, 13], lambda n, t: f"{cmath('sqrt', t)}(v0)", lambda n, x: np.sqrt(x))
_unary("Erf", [9, 13], lambda n, t: f"{cmath('erf', t)}(v0)", lambda n, x: _erf(x))
_unary("Neg", [6, 13], lambda n, t: "-v0", lambda n, x: -x, _SIGNED)
_unary(
    "Abs",
    [6, 13],
    lambda n, t: f"{cmath('fabs', t)}(v0)" if t.is_float else "(v0 < 0 ? -v0 : v0)",
    lambda n, x: np.abs(x),
    _SIGNED,
)
_unary("Reciprocal", [6, 13], lambda n, t: "1 / v0", lambda n, x: 1 / x)
_unary("Floor", [6, 13], lambda n, t: f"{cmath('floor', t)}(v0)", lambda n, x: np.floor(x))
_unary("Ceil", [6, 13], lambda n, t: f"{cmath('ceil', t)}(v0)", lambda n, x: np.ceil(x))


@register("Clip", since=[6, 11, 12, 13])
class Clip(OpDef):
    """y = min(max(x, min), max); bounds are attributes before opset 11 and optional inputs after."""

    def infer(self, node):
        x = node.inputs[0]
        if x.dtype.kind == "bool":
            raise UnsupportedError(f"Clip {node.name!r}: element type bool is not supported")
        return [(x.dtype, x.shape)]

    def _bounds(self, node: Node) -> tuple:
        if node.version < 11:
            return node.attr("min", -3.4028234663852886e38), node.attr("max", 3.4028234663852886e38)
        return node.input(1), node.input(2)

    def reference(self, node, inputs):
        x = inputs[0]
        lo, hi = self._bounds(node)
        if node.version >= 11:
            lo = inputs[1] if len(inputs) > 1 else None
            hi = inputs[2] if len(inputs) > 2 else None
        out = x
        if lo is not None:
            out = np.where(out < lo, lo, out)
        if hi is not None:
            out = np.where(out > hi, hi, out)
        return [np.asarray(out).astype(x.dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        lo, hi = self._bounds(node)
        values, expr = [x], "v0"
        for bound, op in ((lo, "<"), (hi, ">")):
            if bound is None:
                continue
            if isinstance(bound, Value):
                values.append(bound)
                ref = f"v{len(values) - 1}"
            else:
                ref = c_literal(bound, x.dtype)
            expr = f"({expr} {op} {ref} ? {ref} : {expr})"
        return [broadcast_kernel(node, values, y, expr)]


@register("Cast", since=[6, 9, 13, 19, 21])
class Cast(OpDef):
    def infer(self, node):
        to = BY_ONNX.get(node.attr("to"))
        if to is None:
            raise UnsupportedError(f"Cast {node.name!r}: target type code {node.attr('to')} is not supported")
        return [(to, node.inputs[0].shape)]

    def reference(self, node, inputs):
        return [cast_array(inputs[0], BY_ONNX[node.attr("to")], *cast_mode(node))]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        return [broadcast_kernel(node, [x], y, convert_expr("v0", x.dtype, y.dtype, *cast_mode(node)))]


@register("Identity", since=[1, 13, 14, 16, 19, 21])
class Identity(OpDef):
    strings = True

    def infer(self, node):
        x = node.inputs[0]
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        return [inputs[0]]

    def lower(self, node):
        return [broadcast_kernel(node, [node.inputs[0]], node.outputs[0], "v0")]


@register("Dropout", since=[7, 10, 12, 13, 22])
class Dropout(OpDef):
    """Inference Dropout: the identity, and an all-true mask where asked for. With a training_mode that is
    true or known only at run time: random masks (ops/random.py), fresh each run."""

    @staticmethod
    def training(node: Node) -> bool:
        """Whether the node may run in training mode."""
        mode = node.input(2)
        return mode is not None and (mode.data is None or bool(np.asarray(mode.data).reshape(-1)[0]))

    def foldable(self, node):
        return not self.training(node)

    def infer(self, node):
        x = node.inputs[0]
        return [(x.dtype, x.shape), (BOOL, x.shape)][: len(node.outputs)]

    def reference(self, node, inputs):
        return [inputs[0], np.ones(inputs[0].shape, dtype=np.bool_)][: len(node.outputs)]

    def lower(self, node):
        if self.training(node):
            from .random import dropout_kernels  # noqa: PLC0415 - random.py builds on this module

            return dropout_kernels(node)
        x = node.inputs[0]
        kernels = [broadcast_kernel(node, [x], node.outputs[0], "v0")]
        if len(node.outputs) > 1:
            kernels.append(broadcast_kernel(node, [], node.outputs[1], "true"))
        return kernels


class Pointwise(OpDef):
    """A broadcasting elementwise op over `arity` inputs, configured by class attributes:

    kinds      element kinds input 0 may have ("float", "int", "uint", "bool")
    same_type  every input has input 0's type (else only input 0 is checked)
    bool_out   the output is bool (comparisons, predicates); else it has input 0's type
    expr(node, dtypes)      the C expression over v0, v1, ... (dtypes: the inputs' DTypes)
    np_fn(node, *arrays)    the numpy reference
    """

    kinds: tuple[str, ...] = ("float",)
    arity: int = 1
    same_type: bool = True
    bool_out: bool = False

    def expr(self, node: Node, dtypes: Sequence[DType]) -> str:
        raise NotImplementedError

    def np_fn(self, node: Node, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def operands(self, node: Node) -> list[Value]:
        values = [node.input(i) for i in range(self.arity)]
        if any(v is None for v in values):
            raise ModelError(f"{node.op} {node.name!r}: needs {self.arity} input(s)")
        return values

    def infer(self, node):
        values = self.operands(node)
        if self.same_type:
            _same_dtype(node, values)
        dtype = values[0].dtype
        if dtype.kind not in self.kinds:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {dtype} is not supported")
        return [(BOOL if self.bool_out else dtype, broadcast_shapes(node, *(v.shape for v in values)))]

    def reference(self, node, inputs):
        out_dtype = np.bool_ if self.bool_out else inputs[0].dtype
        with np.errstate(all="ignore"):
            return [np.asarray(self.np_fn(node, *inputs[: self.arity])).astype(out_dtype)]

    def lower(self, node):
        values = self.operands(node)
        return [broadcast_kernel(node, values, node.outputs[0], self.expr(node, [v.dtype for v in values]))]


def pointwise(op: str, since: Sequence[int], expr: Callable, np_fn: Callable, **config) -> None:
    """Register a Pointwise op: `expr(node, dtypes) -> C`, `np_fn(node, *arrays) -> array`, config as above."""
    attrs = {"expr": lambda self, n, t: expr(n, t), "np_fn": lambda self, n, *xs: np_fn(n, *xs), **config}
    register(op, since=list(since))(type(op, (Pointwise,), attrs))
