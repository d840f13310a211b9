"""Normalisations over rows: LayerNormalization, RMSNormalization, InstanceNormalization,
GroupNormalization and LpNormalization, on the "rownorm" kernel family.

The input is viewed as rows of n elements with stride `inner` (rows = outer * inner). Statistics are
accumulated in double; the per-element scale and bias are read through index expressions over the row
and the element number k, which is how each op broadcasts them (per element, per channel, per group).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64
from ..ir.graph import Node, Value
from .common import broadcast_strides, c_literal, flat_index, need_input, norm_axis, require_c
from .registry import Kernel, OpDef, register


def rownorm_kernel(node: Node, x: Value, outputs: list[Value], mode: str, rows_outer: int, n: int, inner: int,
                   scale: tuple[Value, str] | None = None, bias: tuple[Value, str] | None = None,
                   epsilon: float = 0.0) -> Kernel:  # fmt: skip
    inputs = [x]
    for extra in (scale, bias):
        if extra is not None:
            inputs.append(extra[0])
    require_c(node, *inputs, outputs[0])
    params = {
        "mode": mode,
        "rows": rows_outer * inner,
        "n": n,
        "inner": inner,
        "epsilon": c_literal(epsilon, FLOAT64),
        "scale_index": scale[1] if scale else None,
        "bias_index": bias[1] if bias else None,
        "stats": len(outputs) == 3,
        "out_ctype": outputs[0].dtype.c,
    }
    return Kernel("rownorm", node.op.lower(), inputs, outputs, params)


def _element_index(param: Value, dims: tuple[int, ...]) -> str:
    """C index of `param` broadcast over `dims`, from the element number k of a row of prod(dims)."""
    return flat_index(dims, broadcast_strides(param.shape, dims), var="k")


def _eps(node: Node, default: float = 1e-5) -> float:
    return float(node.attr("epsilon", default))


def _np_standardise(x: np.ndarray, axes: tuple[int, ...], eps: float):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(((x64 - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    return (x64 - mean) * inv, mean, inv


@register("LayerNormalization", since=[17])
class LayerNormalization(OpDef):
    def _axis(self, node: Node) -> int:
        return norm_axis(node, node.attr("axis", -1), len(need_input(node, 0).shape))

    def infer(self, node):
        x, scale = need_input(node, 0), need_input(node, 1)
        if not x.dtype.is_float:
            raise UnsupportedError(f"LayerNormalization {node.name!r}: element type {x.dtype} is not supported")
        axis = self._axis(node)
        dims = x.shape[axis:]
        for p in (scale, node.input(2)):
            if (
                p is not None
                and len(p.shape) > len(dims)
                or p is not None
                and any(d not in (1, e) for d, e in zip(p.shape[::-1], dims[::-1]))
            ):
                raise ShapeError(
                    f"LayerNormalization {node.name!r}: {list(p.shape)} does not broadcast to {list(dims)}"
                )
        stat = tuple(x.shape[:axis]) + (1,) * len(dims)
        return [(x.dtype, x.shape), (FLOAT32, stat), (FLOAT32, stat)][: len(node.outputs)]

    def reference(self, node, inputs):
        x, scale, bias = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        axes = tuple(range(self._axis(node), x.ndim))
        y, mean, inv = _np_standardise(x, axes, _eps(node))
        y = y * scale + (0 if bias is None else bias)
        return [y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32)][: len(node.outputs)]

    def lower(self, node):
        x = node.inputs[0]
        axis = self._axis(node)
        dims = tuple(x.shape[axis:])
        scale, bias = node.inputs[1], node.input(2)
        outs = [v for v in node.outputs if v is not None]
        if len(outs) not in (1, 3):
            raise UnsupportedError(f"LayerNormalization {node.name!r}: Mean without InvStdDev is not supported")
        return [
            rownorm_kernel(
                node, x, outs, "standard", math.prod(x.shape[:axis]), math.prod(dims), 1,
                (scale, _element_index(scale, dims)),
                (bias, _element_index(bias, dims)) if bias is not None else None,
                _eps(node),
            )
        ]  # fmt: skip


@register("RMSNormalization", since=[23])
class RMSNormalization(OpDef):
    def _axis(self, node: Node) -> int:
        return norm_axis(node, node.attr("axis", -1), len(need_input(node, 0).shape))

    def infer(self, node):
        x = need_input(node, 0)
        need_input(node, 1)
        if not x.dtype.is_float:
            raise UnsupportedError(f"RMSNormalization {node.name!r}: element type {x.dtype} is not supported")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x, scale = inputs[0], inputs[1]
        axes = tuple(range(self._axis(node), x.ndim))
        x64 = x.astype(np.float64)
        y = x64 / np.sqrt((x64**2).mean(axis=axes, keepdims=True) + _eps(node)) * scale
        return [y.astype(x.dtype)]

    def lower(self, node):
        x, scale = node.inputs[0], node.inputs[1]
        axis = self._axis(node)
        dims = tuple(x.shape[axis:])
        return [
            rownorm_kernel(node, x, [node.outputs[0]], "rms", math.prod(x.shape[:axis]), math.prod(dims), 1,
                           (scale, _element_index(scale, dims)), None, _eps(node))
        ]  # fmt: skip


@register("InstanceNormalization", since=[6, 22])
class InstanceNormalization(OpDef):
    def infer(self, node):
        x, scale, bias = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        if len(x.shape) < 3 or not x.dtype.is_float:
            raise UnsupportedError(f"InstanceNormalization {node.name!r}: X {x.dtype}{list(x.shape)} is not supported")
        if scale.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
            raise ShapeError(f"InstanceNormalization {node.name!r}: scale and B must be [{x.shape[1]}]")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x, scale, bias = inputs
        y, _, _ = _np_standardise(x, tuple(range(2, x.ndim)), _eps(node))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]

    def lower(self, node):
        x, scale, bias = node.inputs[:3]
        c = x.shape[1]
        spatial = math.prod(x.shape[2:])
        return [
            rownorm_kernel(node, x, [node.outputs[0]], "standard", x.shape[0] * c, spatial, 1,
                           (scale, f"row % {c}"), (bias, f"row % {c}"), _eps(node))
        ]  # fmt: skip


@register("GroupNormalization", since=[18, 21])
class GroupNormalization(OpDef):
    """Scale and bias per group (opset 18) or per channel (opset 21)."""

    def _groups(self, node: Node) -> int:
        x = need_input(node, 0)
        g = node.attr("num_groups")
        if g is None or g <= 0 or len(x.shape) < 2 or x.shape[1] % g:
            raise ModelError(f"GroupNormalization {node.name!r}: num_groups {g} does not divide the channels")
        return int(g)

    def infer(self, node):
        x = need_input(node, 0)
        g = self._groups(node)
        want = (x.shape[1],) if node.version >= 21 else (g,)
        for i in (1, 2):
            if need_input(node, i).shape != want:
                raise ShapeError(f"GroupNormalization {node.name!r}: input {i} must be {list(want)}")
        if not x.dtype.is_float:
            raise UnsupportedError(f"GroupNormalization {node.name!r}: element type {x.dtype} is not supported")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x, scale, bias = inputs
        g, (n, c) = self._groups(node), x.shape[:2]
        grouped = x.reshape(n, g, -1)
        y, _, _ = _np_standardise(grouped, (2,), _eps(node))
        y = y.reshape(x.shape)
        if node.version < 21:
            scale, bias = np.repeat(scale, c // g), np.repeat(bias, c // g)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]

    def lower(self, node):
        x, scale, bias = node.inputs[:3]
        g, c = self._groups(node), x.shape[1]
        spatial = math.prod(x.shape[2:])
        index = f"(row % {g}) * {c // g} + k / {spatial}" if node.version >= 21 else f"row % {g}"
        return [
            rownorm_kernel(node, x, [node.outputs[0]], "standard", x.shape[0] * g, (c // g) * spatial, 1,
                           (scale, index), (bias, index), _eps(node))
        ]  # fmt: skip


@register("LpNormalization", since=[1, 22])
class LpNormalization(OpDef):
    def _axis_p(self, node: Node) -> tuple[int, int]:
        x = need_input(node, 0)
        p = int(node.attr("p", 2))
        if p not in (1, 2):
            raise ModelError(f"LpNormalization {node.name!r}: p must be 1 or 2")
        return norm_axis(node, node.attr("axis", -1), len(x.shape)), p

    def infer(self, node):
        x = need_input(node, 0)
        self._axis_p(node)
        if not x.dtype.is_float:
            raise UnsupportedError(f"LpNormalization {node.name!r}: element type {x.dtype} is not supported")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x = inputs[0]
        axis, p = self._axis_p(node)
        norm = np.linalg.norm(x.astype(np.float64), ord=p, axis=axis, keepdims=True)
        with np.errstate(all="ignore"):
            return [np.where(norm == 0, 0, x / norm).astype(x.dtype)]

    def lower(self, node):
        x = node.inputs[0]
        axis, p = self._axis_p(node)
        outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
        return [rownorm_kernel(node, x, [node.outputs[0]], f"lp{p}", outer, x.shape[axis], inner)]
