"""Pooling: MaxPool (with Indices), AveragePool, GlobalAveragePool, GlobalMaxPool; 1-D to 3-D."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import INT64
from ..ir.graph import Node
from .common import need_input, require_c
from .conv import as_3d, window_geometry
from .registry import Kernel, OpDef, register


class Pool(OpDef):
    mode = "max"

    def _geometry(self, node: Node):
        x = need_input(node, 0)
        if x.rank < 3 or x.rank > 5:
            raise ShapeError(f"{node.op} {node.name!r}: X {list(x.shape)} must be 3-D to 5-D")
        kernel = node.attr("kernel_shape")
        if not kernel:
            raise ModelError(f"{node.op} {node.name!r}: kernel_shape is required")
        return (tuple(kernel),) + window_geometry(node, x.shape[2:], tuple(kernel), bool(node.attr("ceil_mode", 0)))

    def infer(self, node):
        x = node.inputs[0]
        if not x.dtype.is_float and not (self.mode == "max" and x.dtype.is_int):
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {x.dtype} is not supported")
        shape = x.shape[:2] + self._geometry(node)[1]
        return [(x.dtype, shape), (INT64, shape)][: max(len(node.outputs), 1)]

    def reference(self, node, inputs):
        x = inputs[0].astype(np.float64)
        kernel, out, begin, end, strides, dil = self._geometry(node)
        r = len(kernel)
        # Pad generously past `end` so ceil_mode windows that overhang stay in bounds.
        extra = [
            max((out[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - (x.shape[2 + i] + begin[i]), 0)
            for i in range(r)
        ]
        fill = -np.inf if self.mode == "max" else 0.0
        xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(begin, extra)), constant_values=fill)
        inside = np.pad(np.ones(x.shape[2:]), list(zip(begin, extra)))
        spans = [s + b + e for s, b, e in zip(x.shape[2:], begin, end)]
        padded = np.pad(np.ones(spans), [(0, max(ex - e, 0)) for e, ex in zip(end, extra)])
        acc = np.full(x.shape[:2] + out, fill)
        count = np.zeros(out)
        for pos in np.ndindex(*kernel):
            sl = tuple(
                slice(pos[i] * dil[i], pos[i] * dil[i] + (out[i] - 1) * strides[i] + 1, strides[i]) for i in range(r)
            )
            window = xp[(slice(None), slice(None)) + sl]
            if self.mode == "max":
                acc = np.maximum(acc, window)
            else:
                acc = acc + window
                count = count + (padded if node.attr("count_include_pad", 0) else inside)[sl]
        y = acc if self.mode == "max" else acc / np.maximum(count, 1)
        return [y.astype(inputs[0].dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        kernel, out, begin, end, strides, dil = self._geometry(node)
        storage_order = node.attr("storage_order", 0)
        with_indices = len(node.outputs) > 1 and node.outputs[1].name != ""
        params = {
            "ctype": x.dtype.c,
            "mode": self.mode,
            "NC": x.shape[0] * x.shape[1],
            "in": as_3d(x.shape[2:], 1),
            "out": as_3d(out, 1),
            "kernel": as_3d(kernel, 1),
            "pads": as_3d(begin, 0),
            "pads_end": as_3d(end, 0),
            "strides": as_3d(strides, 1),
            "dilations": as_3d(dil, 1),
            "count_include_pad": bool(node.attr("count_include_pad", 0)),
            "indices": with_indices,
            "column_major": bool(storage_order),
        }
        outputs = [y] + ([node.outputs[1]] if with_indices else [])
        names = ["X", "Y"] + (["Indices"] if with_indices else [])
        rows = _row_ranges(params) if self.mode == "max" and not with_indices else None
        if rows is not None:
            return [Kernel("pool_rows", f"{self.mode}pool", [x], [y], {**params, **rows}, names)]
        return [Kernel("pool", f"{self.mode}pool", [x], outputs, params, names)]


# Rows shorter than this fill vectors badly: such "same"-padded maps are run as one flattened plane (of at
# most PLANE_MAX elements, held on the stack) instead: yolo's SPPF pools (5x5 on 10x10 maps, 128 channels) took
# 0.141 ms each by rows, 0.051 as planes (a masked pass per window position), 0.028-0.031 separably (a pass
# per window row and column; onnxruntime 0.034).
PLANE_MAX_ROW = 32
PLANE_MAX = 4096
MAX_SIDE = 16  # the row kernel unrolls the window's rows and columns
VECTOR = 8  # the row kernel's buffers run to whole vectors of this many elements
REG_ROWS_MAX_VECTORS = 16  # rows of the register path, in 8-float vectors, at most (its code is unrolled)
LOWEST = {
    "float": "-INFINITY",
    "double": "-INFINITY",
    **{f"int{b}_t": f"INT{b}_MIN" for b in (8, 16, 32, 64)},
    **{f"uint{b}_t": "0" for b in (8, 16, 32, 64)},
}


def _row_ranges(p: dict) -> dict | None:
    """For 1-D and 2-D max pooling with no dilation, kernel sides of at most MAX_SIDE and every window
    holding an input element: the parameters of the row kernel (templates/c/kernels/pool_rows.c.j2), or
    None where it does not apply.

    Per output row it takes the maximum over the window's rows of every input column (contiguous, vector
    loads), then over the window's columns of those from a row buffer with the padding at the type's lowest
    value (any column stride: the loads from the buffer at stride 2 are vectorised with permutes). Against
    the general kernel (window by window, every element bounds-checked), per-kernel times in the models
    (1 thread, Zen 3): squeezenet's unpadded 3x3/2 pools 0.356 -> 0.215 ms (64 channels, 111x111) and
    0.160 -> 0.110 (128, 55x55); resnet50's padded one 0.527 -> 0.278 (64, 112x112). Unpadded maps with
    fewer than 2 * VECTOR output columns stay with the general kernel, which has no bounds to check there and
    vectorises its strided loads over the whole row: squeezenet's 3x3/2 pool to 13x13 (256 channels) took
    0.061 ms, 0.076 by rows."""
    (ID, IH, IW), (OD, OH, OW), (KD, KH, KW) = p["in"], p["out"], p["kernel"]
    (_, PH, PW), (_, SH, SW) = p["pads"][:3], p["strides"]
    if ID != 1 or OD != 1 or KD != 1 or p["dilations"] != [1, 1, 1] or max(KH, KW) > MAX_SIDE:
        return None
    lo = [max(0, -(-(PW - kw) // SW)) for kw in range(KW)]
    hi = [min(OW, (IW - 1 + PW - kw) // SW + 1) if IW - 1 + PW - kw >= 0 else 0 for kw in range(KW)]
    lo = [min(a, b) for a, b in zip(lo, hi)]
    covered = all(any(lo[kw] <= ow < hi[kw] for kw in range(KW)) for ow in range(OW))
    rows_ok = all(max(0, PH - oh * SH) < min(KH, IH + PH - oh * SH) for oh in range(OH))
    padded = any(p["pads"]) or any(p["pads_end"])
    if not (covered and rows_ok) or (not padded and OW < 2 * VECTOR):
        return None
    types = {"is_float": p["ctype"] in ("float", "double"), "lowest": LOWEST[p["ctype"]]}
    if SH == SW == 1 and (OH, OW) == (IH, IW) and OW < PLANE_MAX_ROW and OH * OW <= PLANE_MAX:
        # "same" padding at stride 1 on a small map: window position (kh, kw) of output i (in the flattened
        # plane) is input i + (kh - PH) * IW + kw - PW; per kw, which output columns it is inside for
        return {**types, "plane_cols": [[1 if lo[kw] <= ow < hi[kw] else 0 for ow in range(OW)] for kw in range(KW)]}
    mw = -(-OW // VECTOR) * VECTOR
    # the column maxima run to whole vectors too (IWV columns, past the row into the next one, whose values
    # are reset or unread): without, a scalar tail of up to 7 columns per row (squeezenet's 3x3/2 pools, 1
    # thread: 64 channels 111 -> 55 0.103 -> 0.088 ms, 128 channels 55 -> 27 0.080 -> 0.078; onnxruntime
    # 0.074 and 0.030)
    iwv = -(-IW // VECTOR) * VECTOR
    # float32 windows of 2 or 3 columns at column stride 2, a left padding of at most 1, none on the right: with
    # AVX2 or AVX-512 the column maxima stay in registers and the windows come from their even and odd columns
    # by shuffles
    reg_rows = p["ctype"] == "float" and SW == 2 and KW in (2, 3) and PW <= 1 and (OW - 1) * SW + KW <= PW + IW
    reg_rows = reg_rows and -(-IW // 8) <= REG_ROWS_MAX_VECTORS
    return {**types, "MW": mw, "IWV": iwv, "VL": max((mw - 1) * SW + KW, PW + iwv), "reg_rows": reg_rows}


@register("MaxPool", since=[8, 10, 11, 12, 22])
class MaxPool(Pool):
    mode = "max"


@register("AveragePool", since=[7, 10, 11, 19, 22])
class AveragePool(Pool):
    mode = "avg"


class GlobalPool(OpDef):
    mode = "max"

    def infer(self, node):
        x = need_input(node, 0)
        if x.rank < 3 or not x.dtype.is_float:
            raise UnsupportedError(f"{node.op} {node.name!r}: X {x.dtype}{list(x.shape)} is not supported")
        return [(x.dtype, x.shape[:2] + (1,) * (x.rank - 2))]

    def reference(self, node, inputs):
        x = inputs[0]
        axes = tuple(range(2, x.ndim))
        fn = np.max if self.mode == "max" else np.mean
        return [fn(x, axis=axes, keepdims=True).astype(x.dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        params = {
            "ctype": x.dtype.c,
            "mode": self.mode,
            "outer": x.shape[0] * x.shape[1],
            "inner": int(np.prod(x.shape[2:], dtype=np.int64)),
        }
        return [Kernel("global_pool", f"global_{self.mode}pool", [x], [y], params, ["X", "Y"])]


@register("GlobalMaxPool", since=[1, 22])
class GlobalMaxPool(GlobalPool):
    mode = "max"


@register("GlobalAveragePool", since=[1, 22])
class GlobalAveragePool(GlobalPool):
    mode = "avg"
