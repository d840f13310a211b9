"""DeformConv (opsets 19, 22), 2-D, on the "deform_conv" kernel family: one work item per output element.

Output element (n, oc, oh, ow) sums, over the input channels ic of oc's group and the kernel taps (kh, kw),
W[oc, ic, kh, kw] * mask * X[n, ic] sampled at (oh * stride - pad + kh * dilation + offset_h,
ow * stride - pad + kw * dilation + offset_w), plus B[oc]. Offsets and the optional mask (1 where absent) come
per offset group of input channels: offset channel (og * kH * kW + kh * kW + kw) * 2 + {0: h, 1: w}, mask
channel og * kH * kW + kh * kW + kw, both at (oh, ow). Sampling is bilinear over the four neighbouring pixels,
each pixel outside the image reading 0 (onnx's reference: GridSample with align_corners and zeros padding).
Sample positions are computed in the element type; the sum is accumulated in double.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOATS
from ..ir.graph import Node
from .common import cmath, need_input, require_c
from .registry import Kernel, OpDef, register


def bilinear_zeros(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """img [C, H, W] sampled at positions (y, x) (equal shapes S) -> [C, *S]; pixels outside read 0."""
    h, w = img.shape[1:]
    y0, x0 = np.floor(y), np.floor(x)
    out = np.zeros((img.shape[0], *y.shape), dtype=np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            yi, xi = y0 + dy, x0 + dx
            weight = (1 - np.abs(y - yi)) * (1 - np.abs(x - xi))
            inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
            yc = np.where(inside, yi, 0).astype(np.int64)
            xc = np.where(inside, xi, 0).astype(np.int64)
            out += np.where(inside, weight, 0.0) * img[:, yc, xc]
    return out


@register("DeformConv", since=[19, 22])
class DeformConv(OpDef):
    def _geometry(self, node: Node) -> dict:
        """Attributes checked against the inputs' shapes, and the output's spatial shape."""
        x, w, offset = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        b, mask = node.input(3), node.input(4)
        for v in (w, offset, b, mask):
            if v is not None and v.dtype != x.dtype:
                raise ModelError(f"DeformConv {node.name!r}: {v.name!r} is {v.dtype} but X is {x.dtype}")
        if x.dtype not in FLOATS:
            raise UnsupportedError(f"DeformConv {node.name!r}: element type {x.dtype} is not supported")
        if x.rank != 4 or w.rank != 4:
            raise UnsupportedError(
                f"DeformConv {node.name!r}: only 2-D deformable convolution is supported "
                f"(X {list(x.shape)}, W {list(w.shape)} must be rank 4)"
            )
        n, c, h, wd = x.shape
        m, cg, kh, kw = w.shape
        group, og = int(node.attr("group", 1)), int(node.attr("offset_group", 1))
        kernel = [int(k) for k in node.attr("kernel_shape", [kh, kw])]
        pads = [int(p) for p in node.attr("pads", [0, 0, 0, 0])]
        strides = [int(s) for s in node.attr("strides", [1, 1])]
        dilations = [int(d) for d in node.attr("dilations", [1, 1])]
        if group < 1 or og < 1 or c != cg * group or m % group or c % og:
            raise ShapeError(
                f"DeformConv {node.name!r}: X {list(x.shape)} and W {list(w.shape)} do not fit "
                f"group {group} and offset_group {og}"
            )
        if kernel != [kh, kw]:
            raise ShapeError(f"DeformConv {node.name!r}: kernel_shape {kernel} is not W's {[kh, kw]}")
        if len(pads) != 4 or len(strides) != 2 or len(dilations) != 2 or min(pads) < 0:
            raise ModelError(f"DeformConv {node.name!r}: pads {pads}, strides {strides}, dilations {dilations}")
        if min(strides) < 1 or min(dilations) < 1:
            raise ModelError(f"DeformConv {node.name!r}: strides {strides} and dilations {dilations} must be positive")
        span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
        room = [h + pads[0] + pads[2] - span[0], wd + pads[1] + pads[3] - span[1]]
        if min(room) < 0:
            raise ShapeError(f"DeformConv {node.name!r}: the dilated kernel {span} is larger than the padded input")
        out = (room[0] // strides[0] + 1, room[1] // strides[1] + 1)
        taps = og * kh * kw
        if offset.shape != (n, taps * 2, *out):
            raise ShapeError(f"DeformConv {node.name!r}: offset {list(offset.shape)} must be {[n, taps * 2, *out]}")
        if b is not None and b.shape != (m,):
            raise ShapeError(f"DeformConv {node.name!r}: B {list(b.shape)} must be [{m}]")
        if mask is not None and mask.shape != (n, taps, *out):
            raise ShapeError(f"DeformConv {node.name!r}: mask {list(mask.shape)} must be {[n, taps, *out]}")
        return {
            "N": n,
            "C": c,
            "H": h,
            "W": wd,
            "M": m,
            "group": group,
            "offset_group": og,
            "kernel": [kh, kw],
            "pads": pads[:2],
            "strides": strides,
            "dilations": dilations,
            "out": list(out),
        }

    def infer(self, node):
        g = self._geometry(node)
        return [(node.inputs[0].dtype, (g["N"], g["M"], *g["out"]))]

    def reference(self, node, inputs):
        g = self._geometry(node)
        x, w, offset = (np.asarray(v, dtype=np.float64) for v in inputs[:3])
        b = inputs[3] if len(inputs) > 3 else None
        mask = inputs[4] if len(inputs) > 4 else None
        n, c, m, og = g["N"], g["C"], g["M"], g["offset_group"]
        kh, kw = g["kernel"]
        oh, ow = g["out"]
        cpo = c // og
        offset = offset.reshape(n, og, kh, kw, 2, oh, ow)
        mask = np.ones((n, og, kh, kw, oh, ow)) if mask is None else np.asarray(mask, np.float64)
        mask = mask.reshape(n, og, kh, kw, oh, ow)
        base_h = (np.arange(oh) * g["strides"][0] - g["pads"][0])[:, None]
        base_w = (np.arange(ow) * g["strides"][1] - g["pads"][1])[None, :]
        cols = np.zeros((n, c, kh, kw, oh, ow))
        for i in range(n):
            for o in range(og):
                img = x[i, o * cpo : (o + 1) * cpo]
                for p in range(kh):
                    for q in range(kw):
                        y = base_h + p * g["dilations"][0] + offset[i, o, p, q, 0]
                        xx = base_w + q * g["dilations"][1] + offset[i, o, p, q, 1]
                        cols[i, o * cpo : (o + 1) * cpo, p, q] = bilinear_zeros(img, y, xx) * mask[i, o, p, q]
        cg, mg = c // g["group"], m // g["group"]
        y = np.zeros((n, m, oh, ow))
        for k in range(g["group"]):
            y[:, k * mg : (k + 1) * mg] = np.einsum(
                "ncpqhw,mcpq->nmhw", cols[:, k * cg : (k + 1) * cg], w[k * mg : (k + 1) * mg]
            )
        if b is not None:
            y += np.asarray(b, np.float64)[None, :, None, None]
        return [y.astype(inputs[0].dtype)]

    def lower(self, node):
        x, w, offset = node.inputs[:3]
        b, mask = node.input(3), node.input(4)
        y = node.outputs[0]
        require_c(node, x, w, offset, b, mask, y)
        if y.size == 0:
            return []
        g = self._geometry(node)
        inputs = [x, w, offset] + [v for v in (b, mask) if v is not None]
        names = ["X", "W", "offset"] + [k for k, v in (("B", b), ("mask", mask)) if v is not None] + ["Y"]
        params = {
            **g,
            "ctype": x.dtype.c,
            "floor": cmath("floor", x.dtype),
            "has_bias": b is not None,
            "has_mask": mask is not None,
            "total": y.size,
            "taps": math.prod(g["kernel"]),
        }
        return [Kernel("deform_conv", "deform_conv", inputs, [y], params, names)]
