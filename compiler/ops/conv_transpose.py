"""ConvTranspose: 1-D, 2-D and 3-D, groups, strides, dilations, pads, output_padding, output_shape, auto_pad.

Lowered in gather form on the "conv_transpose" family: each output element sums the input positions that
scatter into it, x[(o + pad - k * dilation) / stride] for the taps k where that division is exact and in
range, so every output element is written once (no atomics on CUDA, one thread per element).
Output size and padding follow the ONNX spec: explicit pads (default 0) give the size
stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - pads. With output_shape, or auto_pad
SAME_UPPER/SAME_LOWER (size in * stride unless output_shape), pads are ignored and the total padding that
gives the size is split between the two ends, the odd unit at the end (SAME_UPPER) or the beginning
(otherwise); a size beyond the natural one adds outputs at the end (as the ONNX reference does).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.graph import Node
from .common import need_input, require_c
from .conv import as_3d
from .registry import Kernel, OpDef, register


def geometry(node: Node, x_shape: tuple[int, ...], w_shape: tuple[int, ...]):
    """(group, kernel, out, pads_begin, strides, dilations) of a ConvTranspose node."""
    r = len(x_shape) - 2
    if r < 1 or r > 3 or len(w_shape) != len(x_shape):
        raise ShapeError(f"ConvTranspose {node.name!r}: X {list(x_shape)} and W {list(w_shape)} must be 3-D to 5-D")
    group = node.attr("group", 1)
    if group < 1 or x_shape[1] != w_shape[0] or x_shape[1] % group:
        raise ShapeError(
            f"ConvTranspose {node.name!r}: X {list(x_shape)}, W {list(w_shape)} and group {group} disagree"
        )
    kernel = tuple(node.attr("kernel_shape") or w_shape[2:])
    if kernel != tuple(w_shape[2:]):
        raise ShapeError(f"ConvTranspose {node.name!r}: kernel_shape {list(kernel)} disagrees with W {list(w_shape)}")
    strides = list(node.attr("strides") or [1] * r)
    dil = list(node.attr("dilations") or [1] * r)
    out_pad = list(node.attr("output_padding") or [0] * r)
    out_shape = node.attr("output_shape")
    if out_shape is not None and len(out_shape) == r + 2:
        out_shape = out_shape[2:]  # some exporters give the full N, C, ... shape
    auto_pad = node.attr("auto_pad", "NOTSET")
    if len(strides) != r or len(dil) != r or len(out_pad) != r or (out_shape is not None and len(out_shape) != r):
        raise ModelError(f"ConvTranspose {node.name!r}: strides/dilations/output_padding/output_shape need {r} values")
    if min(strides) < 1 or min(dil) < 1 or min(kernel) < 1:
        raise ModelError(f"ConvTranspose {node.name!r}: strides, dilations and kernel sizes must be positive")
    natural = [strides[i] * (x_shape[i + 2] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 for i in range(r)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") or (out_shape is not None and auto_pad == "NOTSET"):
        out = list(out_shape) if out_shape is not None else [x_shape[i + 2] * strides[i] for i in range(r)]
        total = [max(natural[i] - out[i], 0) for i in range(r)]  # < 0: the extra outputs are at the end
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
    elif auto_pad in ("NOTSET", "VALID"):
        pads = node.attr("pads") or [0] * (2 * r)
        if len(pads) != 2 * r or auto_pad == "VALID":
            pads = [0] * (2 * r) if auto_pad == "VALID" else pads
        if len(pads) != 2 * r:
            raise ModelError(f"ConvTranspose {node.name!r}: pads {list(pads)} need {2 * r} values")
        begin = list(pads[:r])
        out = list(out_shape) if out_shape is not None else [natural[i] - pads[i] - pads[i + r] for i in range(r)]
    else:
        raise ModelError(f"ConvTranspose {node.name!r}: unknown auto_pad {auto_pad!r}")
    if min(out) < 1:
        raise ShapeError(f"ConvTranspose {node.name!r}: output size {out} is empty")
    return group, kernel, tuple(int(o) for o in out), [int(b) for b in begin], strides, dil


@register("ConvTranspose", since=[1, 11, 22])
class ConvTranspose(OpDef):
    def infer(self, node):
        x, w = need_input(node, 0), need_input(node, 1)
        if not x.dtype.is_float or w.dtype != x.dtype:
            raise UnsupportedError(f"ConvTranspose {node.name!r}: element types {x.dtype}/{w.dtype} not supported")
        group, _, out, *_ = geometry(node, x.shape, w.shape)
        b = node.input(2)
        if b is not None and b.shape != (w.shape[1] * group,):
            raise ShapeError(f"ConvTranspose {node.name!r}: B {list(b.shape)} should be [{w.shape[1] * group}]")
        return [(x.dtype, (x.shape[0], w.shape[1] * group) + out)]

    def reference(self, node, inputs):
        x, w = inputs[0], inputs[1]
        group, kernel, out, begin, strides, dil = geometry(node, x.shape, w.shape)
        n, c = x.shape[:2]
        mg = w.shape[1]
        cg = c // group
        y = np.zeros((n, mg * group) + out, dtype=np.float64)
        for pos in np.ndindex(*x.shape[2:]):
            for k in np.ndindex(*kernel):
                o = [pos[i] * strides[i] - begin[i] + k[i] * dil[i] for i in range(len(out))]
                if any(v < 0 or v >= out[i] for i, v in enumerate(o)):
                    continue
                for g in range(group):
                    xs = x[(slice(None), slice(g * cg, (g + 1) * cg)) + pos].astype(np.float64)
                    ws = w[(slice(g * cg, (g + 1) * cg), slice(None)) + k].astype(np.float64)
                    y[(slice(None), slice(g * mg, (g + 1) * mg)) + tuple(o)] += xs @ ws
        if len(inputs) > 2 and inputs[2] is not None:
            y += inputs[2].astype(np.float64).reshape((1, -1) + (1,) * len(out))
        return [y.astype(x.dtype)]

    def lower(self, node):
        x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.input(2)
        require_c(node, x, w, y)
        group, kernel, out, begin, strides, dil = geometry(node, x.shape, w.shape)
        params = {
            "ctype": x.dtype.c,
            "N": x.shape[0],
            "C": x.shape[1],
            "M": w.shape[1] * group,
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
        return [Kernel("conv_transpose", "conv_transpose", inputs, [y], params, names)]
