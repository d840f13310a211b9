"""Conv: 1-D, 2-D and 3-D, groups, dilations, strides, explicit pads and auto_pad."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.graph import Node
from .common import need_input, require_c
from .registry import Kernel, OpDef, register


def window_geometry(node: Node, spatial: tuple[int, ...], kernel: tuple[int, ...], ceil_mode: bool = False):
    """Output sizes and (begin, end) pads of a sliding window op: auto_pad, pads, strides, dilations."""
    r = len(spatial)
    strides = node.attr("strides") or [1] * r
    dilations = node.attr("dilations") or [1] * r
    pads = node.attr("pads") or [0] * (2 * r)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if len(strides) != r or len(dilations) != r or len(pads) != 2 * r or len(kernel) != r:
        raise ModelError(f"{node.op} {node.name!r}: strides/dilations/pads/kernel_shape disagree with rank {r}")
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise ModelError(f"{node.op} {node.name!r}: strides, dilations and kernel sizes must be positive")
    out, begin, end = [], [], []
    for i in range(r):
        extent = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-spatial[i] // strides[i])
            total = max((o - 1) * strides[i] + extent - spatial[i], 0)
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            out.append(o), begin.append(lo), end.append(total - lo)
            continue
        if auto_pad == "VALID":
            lo = hi = 0
        elif auto_pad == "NOTSET":
            lo, hi = pads[i], pads[i + r]
        else:
            raise ModelError(f"{node.op} {node.name!r}: unknown auto_pad {auto_pad!r}")
        span = spatial[i] + lo + hi - extent
        if span < 0:
            raise ShapeError(
                f"{node.op} {node.name!r}: window {extent} is larger than the padded input {spatial[i] + lo + hi}"
            )
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= spatial[i] + lo:
            o -= 1  # the last window must start inside the input or its left padding
        out.append(o), begin.append(lo), end.append(hi)
    return tuple(out), begin, end, list(strides), list(dilations)


def as_3d(values: list[int], fill: int) -> list[int]:
    """Spatial parameters padded in front to 3 dims (1-D and 2-D ops run as 3-D with unit dims)."""
    return [fill] * (3 - len(values)) + list(values)


def conv_geometry(node: Node, x_shape: tuple[int, ...], w_shape: tuple[int, ...]):
    """(group, kernel, out, begin, end, strides, dilations) of a Conv with input X and weights W shapes."""
    if len(x_shape) < 3 or len(x_shape) > 5 or len(w_shape) != len(x_shape):
        raise ShapeError(f"Conv {node.name!r}: X {list(x_shape)} and W {list(w_shape)} must both be 3-D to 5-D")
    group = node.attr("group", 1)
    kernel = tuple(node.attr("kernel_shape") or w_shape[2:])
    if kernel != tuple(w_shape[2:]):
        raise ShapeError(f"Conv {node.name!r}: kernel_shape {list(kernel)} disagrees with W {list(w_shape)}")
    if group < 1 or x_shape[1] % group or w_shape[0] % group or w_shape[1] * group != x_shape[1]:
        raise ShapeError(f"Conv {node.name!r}: X {list(x_shape)}, W {list(w_shape)} and group {group} disagree")
    return (group, kernel) + window_geometry(node, x_shape[2:], kernel)


def conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry) -> np.ndarray:
    """Conv in float64 numpy from its geometry (conv_geometry), rounded to x's type."""
    group, kernel, out, begin, end, strides, dil = geometry
    r = len(kernel)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(begin, end)))
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    y = np.zeros((n, m) + out, dtype=np.float64)
    for pos in np.ndindex(*kernel):
        sl = tuple(
            slice(pos[i] * dil[i], pos[i] * dil[i] + (out[i] - 1) * strides[i] + 1, strides[i]) for i in range(r)
        )
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(group):
            wk = w[(slice(g * mg, (g + 1) * mg), slice(None)) + pos].astype(np.float64)
            y[:, g * mg : (g + 1) * mg] += np.einsum("nc...,mc->nm...", patch[:, g * cg : (g + 1) * cg], wk)
    if b is not None:
        y += b.reshape((1, m) + (1,) * r)
    return y.astype(x.dtype)


@register("Conv", since=[1, 11, 22])
class Conv(OpDef):
    def _geometry(self, node: Node):
        x, w = need_input(node, 0), need_input(node, 1)
        b = node.input(2)
        if b is not None and b.shape != (w.shape[0],):
            raise ShapeError(f"Conv {node.name!r}: B {list(b.shape)} should be [{w.shape[0]}]")
        return conv_geometry(node, x.shape, w.shape)

    def infer(self, node):
        x, w = node.inputs[0], node.inputs[1]
        if not x.dtype.is_float or w.dtype != x.dtype:
            raise UnsupportedError(f"Conv {node.name!r}: element types {x.dtype}/{w.dtype} are not supported")
        out = self._geometry(node)[2]
        return [(x.dtype, (x.shape[0], w.shape[0]) + out)]

    def reference(self, node, inputs):
        b = inputs[2] if len(inputs) > 2 else None
        return [conv_reference(inputs[0], inputs[1], b, self._geometry(node))]

    def lower(self, node):
        x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.input(2)
        require_c(node, x, w, y)
        group, kernel, out, begin, _, strides, dil = self._geometry(node)
        params = {
            "ctype": x.dtype.c,
            "N": x.shape[0],
            "C": x.shape[1],
            "M": w.shape[0],
            "group": group,
            "in": as_3d(x.shape[2:], 1),
            "out": as_3d(out, 1),
            "kernel": as_3d(kernel, 1),
            "pads": as_3d(begin, 0),
            "strides": as_3d(strides, 1),
            "dilations": as_3d(dil, 1),
            "has_bias": b is not None,
        }
        inputs = [x, w] + ([b] if b is not None else [])
        names = ["X", "W"] + (["B"] if b is not None else []) + ["Y"]
        return [Kernel("conv", "conv", inputs, [y], params, names)]
