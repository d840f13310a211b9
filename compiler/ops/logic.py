"""Comparisons, logical ops, NaN/Inf predicates (bool results), Where and CastLike."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import BOOL, STRING
from .common import broadcast_shapes, cast_array, cast_mode, convert_expr
from .elementwise import broadcast_kernel, pointwise
from .registry import OpDef, register

_NUMERIC = ("float", "int", "uint")


def _equal_expr(node, dtypes) -> str:
    return "mlcc_str_eq(v0, v1)" if dtypes[0] == STRING else "v0 == v1"


pointwise(
    "Equal",
    [7, 11, 13, 19],
    _equal_expr,
    lambda n, a, b: np.equal(a, b),
    kinds=(*_NUMERIC, "bool", "string"),
    arity=2,
    bool_out=True,
    strings=True,
)
for _op, _since, _c, _fn, _kinds in (
    ("Less", [7, 9, 13], "<", np.less, _NUMERIC),
    ("Greater", [7, 9, 13], ">", np.greater, _NUMERIC),
    ("LessOrEqual", [12, 16], "<=", np.less_equal, _NUMERIC),
    ("GreaterOrEqual", [12, 16], ">=", np.greater_equal, _NUMERIC),
):
    pointwise(
        _op,
        _since,
        lambda n, t, c=_c: f"v0 {c} v1",
        lambda n, a, b, f=_fn: f(a, b),
        kinds=_kinds,
        arity=2,
        bool_out=True,
    )

pointwise("Not", [1], lambda n, t: "!v0", lambda n, x: np.logical_not(x), kinds=("bool",))
pointwise("And", [7], lambda n, t: "v0 && v1", lambda n, a, b: a & b, kinds=("bool",), arity=2)
pointwise("Or", [7], lambda n, t: "v0 || v1", lambda n, a, b: a | b, kinds=("bool",), arity=2)
pointwise("Xor", [7], lambda n, t: "v0 != v1", lambda n, a, b: a ^ b, kinds=("bool",), arity=2)
pointwise("IsNaN", [9, 13, 20], lambda n, t: "v0 != v0", lambda n, x: np.isnan(x), bool_out=True)


def _isinf_expr(node, dtypes) -> str:
    tests = []
    if node.attr("detect_positive", 1):
        tests.append("v0 == INFINITY")
    if node.attr("detect_negative", 1):
        tests.append("v0 == -INFINITY")
    return " || ".join(tests) or "false"


def _isinf_ref(node, x):
    pos = np.isposinf(x) if node.attr("detect_positive", 1) else np.zeros(x.shape, bool)
    neg = np.isneginf(x) if node.attr("detect_negative", 1) else np.zeros(x.shape, bool)
    return pos | neg


pointwise("IsInf", [10, 20], _isinf_expr, _isinf_ref, bool_out=True)


@register("Where", since=[9, 16])
class Where(OpDef):
    """y = cond ? x : y, all three broadcast together."""

    strings = True

    def infer(self, node):
        cond, x, y = (node.input(i) for i in range(3))
        if cond is None or x is None or y is None:
            raise ModelError(f"Where {node.name!r}: needs condition, X and Y")
        if cond.dtype != BOOL:
            raise ModelError(f"Where {node.name!r}: the condition must be bool, not {cond.dtype}")
        if x.dtype != y.dtype:
            raise ModelError(f"Where {node.name!r}: X is {x.dtype} but Y is {y.dtype}")
        return [(x.dtype, broadcast_shapes(node, cond.shape, x.shape, y.shape))]

    def reference(self, node, inputs):
        return [np.where(inputs[0], inputs[1], inputs[2]).astype(inputs[1].dtype)]

    def lower(self, node):
        return [broadcast_kernel(node, node.inputs[:3], node.outputs[0], "v0 ? v1 : v2")]


@register("CastLike", since=[15, 19, 21, 23, 24, 25])
class CastLike(OpDef):
    """Cast input 0 to the element type of input 1."""

    def infer(self, node):
        x, like = node.input(0), node.input(1)
        if x is None or like is None:
            raise ModelError(f"CastLike {node.name!r}: needs two inputs")
        if like.dtype.c is None:
            raise UnsupportedError(f"CastLike {node.name!r}: target type {like.dtype} is not supported")
        return [(like.dtype, x.shape)]

    def reference(self, node, inputs):
        return [cast_array(inputs[0], node.inputs[1].dtype, *cast_mode(node))]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        return [broadcast_kernel(node, [x], y, convert_expr("v0", x.dtype, y.dtype, *cast_mode(node)))]
