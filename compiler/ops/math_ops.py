"""Elementwise math: trigonometric and hyperbolic functions, Sign, Round, Mod, bitwise ops and shifts."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .common import cmath
from .elementwise import pointwise

_TRIG = {"Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan}
_HYPERBOLIC = {"Sinh": np.sinh, "Cosh": np.cosh, "Asinh": np.arcsinh, "Acosh": np.arccosh, "Atanh": np.arctanh}

for _op, _fn in {**_TRIG, **_HYPERBOLIC}.items():
    _c = _op.lower()  # the C function: sin, asinh, ...
    pointwise(
        _op,
        [7, 22] if _op in _TRIG else [9, 22],
        lambda n, t, c=_c: f"{cmath(c, t[0])}(v0)",
        lambda n, x, f=_fn: f(x),
    )

_NUMERIC = ("float", "int", "uint")
pointwise(
    "Sign",
    [9, 13],
    lambda n, t: "(v0 > 0)" if t[0].kind == "uint" else "(v0 > 0) - (v0 < 0)",
    lambda n, x: np.sign(x),
    kinds=_NUMERIC,
)
# rint rounds half to even in the default rounding mode, as ONNX (and numpy) ask.
pointwise("Round", [11, 22], lambda n, t: f"{cmath('rint', t[0])}(v0)", lambda n, x: np.round(x))


def _mod_expr(node, dtypes) -> str:
    t = dtypes[0]
    if node.attr("fmod", 0):
        if t.is_float:
            return f"{cmath('fmod', t)}(v0, v1)"
        return "(v1 == 0 ? 0 : v0 % v1)" if t.kind == "uint" else "((v1 == 0 || v1 == -1) ? 0 : v0 % v1)"
    if t.is_float:  # the sign of the divisor, as numpy's mod: fmod corrected by one divisor
        rem = f"{cmath('fmod', t)}(v0, v1)"
        return f"(({rem} != 0 && (({rem} < 0) != (v1 < 0))) ? {rem} + v1 : {rem})"
    if t.kind == "uint":
        return "(v1 == 0 ? 0 : v0 % v1)"
    # The sign of the divisor (Python's %); x % 0 gives 0 and x % -1 is 0 without the INT_MIN trap.
    rem = "((v1 == 0 || v1 == -1) ? 0 : v0 % v1)"
    return f"(({rem} != 0 && (({rem} < 0) != (v1 < 0))) ? {rem} + v1 : {rem})"


def _mod_ref(node, a, b):
    if node.attr("fmod", 0):
        return np.fmod(a, b)
    return np.mod(a, b)


pointwise("Mod", [10, 13, 28], _mod_expr, _mod_ref, kinds=_NUMERIC, arity=2)

_INTS = ("int", "uint")
pointwise("BitwiseAnd", [18], lambda n, t: "v0 & v1", lambda n, a, b: a & b, kinds=_INTS, arity=2)
pointwise("BitwiseOr", [18], lambda n, t: "v0 | v1", lambda n, a, b: a | b, kinds=_INTS, arity=2)
pointwise("BitwiseXor", [18], lambda n, t: "v0 ^ v1", lambda n, a, b: a ^ b, kinds=_INTS, arity=2)
pointwise("BitwiseNot", [18], lambda n, t: "~v0", lambda n, x: ~x, kinds=_INTS)


def _direction(node) -> str:
    direction = node.attr("direction", b"")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("LEFT", "RIGHT"):
        raise ModelError(f"BitShift {node.name!r}: direction must be LEFT or RIGHT")
    return direction


def _shift_expr(node, dtypes) -> str:
    """A shift count outside [0, width) gives the full-width result (0, or -1 for a right shift of a negative
    value), as ONNX asks; C leaves those shifts undefined. Left shifts run on the unsigned bit pattern."""
    t = dtypes[0]
    bits, signed = t.itemsize * 8, t.kind == "int"
    out_of_range = f"(v1 < 0 || v1 >= {bits})" if signed else f"v1 >= {bits}"
    if _direction(node) == "LEFT":
        return f"({out_of_range} ? 0 : ({t.c})((uint64_t)v0 << v1))"
    full = "(v0 < 0 ? -1 : 0)" if signed else "0"
    return f"({out_of_range} ? {full} : v0 >> v1)"


def _shift_ref(node, a, b):
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    count = np.where(ok, b, 0).astype(a.dtype)
    if _direction(node) == "LEFT":
        return np.where(ok, np.left_shift(a, count), 0)
    return np.where(ok, np.right_shift(a, count), np.where(a < 0, -1, 0))


pointwise("BitShift", [11, 28], _shift_expr, _shift_ref, kinds=_INTS, arity=2)
