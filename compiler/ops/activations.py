"""Activation functions beyond the basic set: the ELU family, soft/hard curves, GELU, Mish, Swish, Shrink, PRelu."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..ir.dtypes import FLOAT64
from .common import broadcast_shapes, c_literal, cmath, logistic_den
from .elementwise import pointwise

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _f(node, key: str, default: float, t) -> str:
    return c_literal(node.attr(key, default), t)


def _a(node, key: str, default: float) -> np.float32:
    return np.float32(node.attr(key, default))


def _softplus(t, x: str = "v0") -> str:
    log1p, exp = cmath("log1p", t), cmath("exp", t)
    return f"({x} > 0 ? {x} + {log1p}({exp}(-{x})) : {log1p}({exp}({x})))"


def _np_softplus(x):
    return np.logaddexp(0, x.astype(np.float64))


pointwise("Softplus", [1, 22], lambda n, t: _softplus(t[0]), lambda n, x: _np_softplus(x))
pointwise("Softsign", [1, 22], lambda n, t: f"v0 / (1 + {cmath('fabs', t[0])}(v0))", lambda n, x: x / (1 + np.abs(x)))
pointwise(
    "Elu",
    [6, 22],
    lambda n, t: f"(v0 < 0 ? {_f(n, 'alpha', 1.0, t[0])} * {cmath('expm1', t[0])}(v0) : v0)",
    lambda n, x: np.where(x < 0, _a(n, "alpha", 1.0) * np.expm1(x), x),
)
_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875
pointwise(
    "Selu",
    [6, 22],
    lambda n, t: (
        f"(v0 <= 0 ? {_f(n, 'gamma', _SELU_GAMMA, t[0])} * ({_f(n, 'alpha', _SELU_ALPHA, t[0])} * "
        f"{cmath('exp', t[0])}(v0) - {_f(n, 'alpha', _SELU_ALPHA, t[0])}) : {_f(n, 'gamma', _SELU_GAMMA, t[0])} * v0)"
    ),
    lambda n, x: np.where(
        x <= 0,
        _a(n, "gamma", _SELU_GAMMA) * (_a(n, "alpha", _SELU_ALPHA) * np.exp(x) - _a(n, "alpha", _SELU_ALPHA)),
        _a(n, "gamma", _SELU_GAMMA) * x,
    ),
)
pointwise(
    "Celu",
    [12, 28],
    lambda n, t: (
        f"(v0 > 0 ? v0 : {_f(n, 'alpha', 1.0, t[0])} * {cmath('expm1', t[0])}(v0 / {_f(n, 'alpha', 1.0, t[0])}))"
    ),
    lambda n, x: np.where(x > 0, x, _a(n, "alpha", 1.0) * np.expm1(x / _a(n, "alpha", 1.0))),
)
pointwise(
    "HardSigmoid",
    [6, 22],
    lambda n, t: (
        f"{cmath('fmax', t[0])}(0, {cmath('fmin', t[0])}(1, {_f(n, 'alpha', 0.2, t[0])} * v0 + "
        f"{_f(n, 'beta', 0.5, t[0])}))"
    ),
    lambda n, x: np.clip(_a(n, "alpha", 0.2) * x + _a(n, "beta", 0.5), 0, 1),
)
pointwise(
    "HardSwish",
    [14, 22],
    lambda n, t: f"v0 * {cmath('fmax', t[0])}(0, {cmath('fmin', t[0])}(1, v0 / 6 + {c_literal(0.5, t[0])}))",
    lambda n, x: x * np.clip(x / 6 + 0.5, 0, 1),
)
pointwise(
    "ThresholdedRelu",
    [10, 22],
    lambda n, t: f"(v0 > {_f(n, 'alpha', 1.0, t[0])} ? v0 : 0)",
    lambda n, x: np.where(x > _a(n, "alpha", 1.0), x, 0),
)
pointwise(
    "Mish",
    [18, 22],
    lambda n, t: f"v0 * {cmath('tanh', t[0])}({_softplus(t[0])})",
    lambda n, x: x * np.tanh(_np_softplus(x)),
)


def _approximate(node) -> str:
    mode = node.attr("approximate", "none")
    return mode.decode() if isinstance(mode, bytes) else mode


def _gelu_expr(node, dtypes) -> str:
    t = dtypes[0]
    if _approximate(node) == "tanh":
        k = c_literal(math.sqrt(2 / math.pi), t)
        return (
            f"{c_literal(0.5, t)} * v0 * (1 + {cmath('tanh', t)}({k} * (v0 + {c_literal(0.044715, t)} * v0 * v0 * v0)))"
        )
    return f"{c_literal(0.5, t)} * v0 * (1 + {cmath('erf', t)}(v0 * {c_literal(math.sqrt(0.5), t)}))"


def _gelu_ref(node, x):
    x64 = x.astype(np.float64)
    if _approximate(node) == "tanh":
        return 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    return 0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)))


pointwise("Gelu", [20], _gelu_expr, _gelu_ref)
pointwise(
    "Swish",
    [24],
    lambda n, t: f"v0 / {logistic_den(_f(n, 'alpha', 1.0, t[0]) + ' * v0', t[0])}",
    lambda n, x: x / (1 + np.exp(-_a(n, "alpha", 1.0) * x.astype(np.float64))),
)


def _shrink_expr(node, dtypes) -> str:
    t = dtypes[0] if dtypes[0].is_float else FLOAT64
    lambd, bias = _f(node, "lambd", 0.5, t), _f(node, "bias", 0.0, t)
    return f"(v0 < -{lambd} ? v0 + {bias} : (v0 > {lambd} ? v0 - {bias} : 0))"


def _shrink_ref(node, x):
    lambd, bias = node.attr("lambd", 0.5), node.attr("bias", 0.0)
    x64 = x.astype(np.float64)
    return np.where(x64 < -lambd, x64 + bias, np.where(x64 > lambd, x64 - bias, 0))


pointwise("Shrink", [9], _shrink_expr, _shrink_ref, kinds=("float", "int"))


def _prelu_expr(node, dtypes) -> str:
    x, slope = node.inputs[0], node.inputs[1]
    if broadcast_shapes(node, x.shape, slope.shape) != tuple(x.shape):
        raise ShapeError(f"PRelu {node.name!r}: slope {list(slope.shape)} does not broadcast to X {list(x.shape)}")
    return "(v0 < 0 ? v1 * v0 : v0)"


pointwise(
    "PRelu",
    [7, 9, 16],
    _prelu_expr,
    lambda n, x, s: np.where(x < 0, s * x, x),
    kinds=("float", "int"),
    arity=2,
)
