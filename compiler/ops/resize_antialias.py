"""Resize with antialias=1 (opset 18 on) for the linear and cubic modes, on the "indexed" kernel family.

When an axis shrinks by scale s < 1 the interpolation filter is stretched by 1/s: the linear (triangle,
support 1) or cubic (Keys, support 2) kernel is evaluated at s * distance, so it spans 2/s or 4/s input
samples, and each output element's weights are divided by their sum. This follows onnx's reference
(_linear_coeffs_antialias, _cubic_coeffs_antialias): the taps of output coordinate x start at
ceil(x) - 1 + start, start = floor(-support / s) + 1, there are 2 - 2 * start of them, indices outside the
input are clamped to the edge (or, with exclude_outside, dropped before the weights are normalised). Axes
that grow (s >= 1) keep the plain filter. Axes are separable: the weight of a tap is the product of its axes'
weights, so the normalisation divides by the sum of those products.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ModelError, ShapeError
from ..ir.dtypes import FLOAT64
from ..ir.graph import Node
from .common import c_literal, contiguous_strides
from .indexed import indexed_kernel
from .registry import Kernel

SUPPORT = {"linear": 1, "cubic": 2}  # half-width of each filter, in input samples at scale 1


def taps_start(mode: str, scale: float) -> int:
    """The first tap's offset from ceil(x) - 1 (0 or negative); the axis has 2 - 2 * start taps."""
    return int(np.floor(-SUPPORT[mode] / min(scale, 1.0)) + 1)


def filter_expr(mode: str, u: str, a_coef: float) -> str:
    """C expression of the filter at |distance| `u` (already scaled); cubic uses the coefficient A = a_coef."""
    if mode == "linear":
        return f"({u} < 1 ? 1 - {u} : 0.0)"
    A = repr(a_coef)
    return (
        f"({u} <= 1 ? (({A} + 2) * {u} - ({A} + 3)) * {u} * {u} + 1"
        f" : ({u} < 2 ? (({A} * {u} - 5 * {A}) * {u} + 8 * {A}) * {u} - 4 * {A} : 0.0))"
    )


def lower_antialias(node: Node, plan: Any, source: Callable[..., str]) -> list[Kernel]:
    """Kernels of an antialiased linear or cubic Resize; `plan` is resize.py's _Plan of the node and
    `source(transform, o, length, out, scale, roi)` its C text of an output coordinate's source coordinate."""
    x, y = node.inputs[0], node.outputs[0]
    mode = node.attr("mode", "nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in SUPPORT:
        raise ModelError(f"Resize {node.name!r}: antialias applies to the linear and cubic modes, not {mode!r}")
    a_coef = float(node.attr("cubic_coeff_a", -0.75))
    exclude = bool(node.attr("exclude_outside", 0))
    strides = contiguous_strides(x.shape)
    base = " + ".join(f"o{k} * {strides[k]}" for k in range(x.rank) if k not in plan.axes and strides[k]) or "0"
    lets, outside, loops, terms = [], [], [], [base]
    for depth, a in enumerate(plan.axes):
        n, scale = x.shape[a], plan.scale[a]
        if n == 0:
            raise ShapeError(f"Resize {node.name!r}: cannot interpolate an empty axis")
        start = taps_start(mode, scale)
        taps = 2 - 2 * start
        filter_scale = c_literal(min(scale, 1.0), FLOAT64)
        src = source(plan.transform, f"o{a}", n, plan.out[a], scale, plan.roi[a])
        # Taps start at ceil(x) - 1 + start: an integral x counts as the right end of the interval before it.
        lets.append(f"const double x{a} = {src}, c{a} = ceil(x{a}) - 1, r{a} = x{a} - c{a};")
        if plan.transform == "tf_crop_and_resize":
            outside.append(f"x{a} < 0 || x{a} > {n - 1}")
        pad = "  " * depth
        loops.append(f"{pad}for (int64_t t{a} = 0; t{a} < {taps}; ++t{a}) {{")
        offset = f"t{a} - {-start}" if start else f"t{a}"
        loops.append(f"{pad}  const int64_t j{a} = (int64_t)c{a} + {offset};")
        loops.append(f"{pad}  const double u{a} = fabs({filter_scale} * ((double)({offset}) - r{a}));")
        weight = filter_expr(mode, f"u{a}", a_coef)
        if exclude:
            weight = f"(j{a} < 0 || j{a} >= {n}) ? 0.0 : {weight}"
        prev = f"w{plan.axes[depth - 1]} * " if depth else ""
        loops.append(f"{pad}  const double w{a} = {prev}({weight});")
        loops.append(f"{pad}  const int64_t k{a} = j{a} < 0 ? 0 : (j{a} >= {n} ? {n - 1} : j{a});")
        terms.append(f"k{a} * {strides[a]}" if strides[a] != 1 else f"k{a}")
    if not plan.axes:  # every axis keeps its size: a copy
        return [indexed_kernel(node, [x], y, f"in0[{base}]")]
    last = plan.axes[-1]
    inner = "  " * len(plan.axes)
    lets.append("double acc = 0, total = 0;")
    lets += loops
    lets.append(f"{inner}acc += w{last} * (double)in0[{' + '.join(terms)}];")
    lets.append(f"{inner}total += w{last};")
    lets += ["  " * d + "}" for d in range(len(plan.axes) - 1, -1, -1)]
    lets.append("acc = total != 0 ? acc / total : 0.0;")
    value = "acc"
    if not y.dtype.is_float:
        info = np.iinfo(y.dtype.np)
        value = f"(rint(acc) < {info.min} ? {info.min} : (rint(acc) > {info.max} ? {info.max} : rint(acc)))"
    if outside:
        extra = c_literal(float(node.attr("extrapolation_value", 0.0)), FLOAT64)
        value = f"({' || '.join(outside)}) ? {extra} : {value}"
    return [indexed_kernel(node, [x], y, value, lets)]
