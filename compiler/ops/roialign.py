"""RoiAlign (opsets 10, 16, 22) on the "roialign" kernel family: one work item per output element.

Output element (r, c, ph, pw) pools bin (ph, pw) of region of interest r over channel c of image
batch_indices[r]: the roi is scaled by spatial_scale and, with coordinate_transformation_mode half_pixel (the
default from opset 16; opset 10 has no such attribute and behaves as output_half_pixel), shifted by half a
pixel; output_half_pixel instead stretches a roi smaller than one pixel to one. Each bin is sampled on a
grid of sampling_ratio points per axis (0: ceil(roi extent / output extent), per roi) at the centres of the
grid cells, each sample interpolated bilinearly; a sample more than one pixel outside the image counts as 0.
mode avg averages the samples; mode max follows onnx's reference (the node tests' expectation): a sample's
value is the largest of its four weighted corner terms, not the interpolated value, and the bin keeps the
largest sample. Geometry is computed in the element type, as onnxruntime does.

Hostile input: a batch index outside [0, N) yields zeros for that roi instead of reading another image, and
the adaptive grid is capped at GRID_LIMIT samples per axis (a NaN or infinite roi gives an empty grid), so
no float-to-integer conversion in the kernel is undefined.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOATS, INT32, INT64
from ..ir.graph import Node
from .common import c_literal, cmath, need_input, require_c
from .registry import Kernel, OpDef, register

GRID_LIMIT = 1 << 16


def _s(node: Node, key: str, default: str) -> str:
    v = node.attr(key, default)
    return v.decode() if isinstance(v, bytes) else v


def grid_size(extent: float, pooled: int) -> int:
    """Samples per bin along one axis for sampling_ratio 0: ceil(extent / pooled), clamped to [0, GRID_LIMIT]."""
    v = math.ceil(extent / pooled) if math.isfinite(extent / pooled) else (GRID_LIMIT if extent > 0 else 0)
    return max(0, min(v, GRID_LIMIT))


def axis_samples(start: float, bin_size: float, grid: int, pooled: int, extent: int):
    """Per axis, for each (bin, sample): validity, low and high pixel and the low and high weights."""
    pos = start + np.arange(pooled)[:, None] * bin_size + (np.arange(grid)[None, :] + 0.5) * bin_size / max(grid, 1)
    valid = (pos >= -1.0) & (pos <= extent)
    pos = np.where(valid, np.maximum(pos, 0.0), 0.0)
    low = np.floor(pos).astype(np.int64)
    edge = low >= extent - 1
    low = np.where(edge, extent - 1, low)
    high = np.where(edge, low, low + 1)
    pos = np.where(edge, low, pos)
    frac = pos - low
    return valid, low, high, 1.0 - frac, frac


@register("RoiAlign", since=[10, 16, 22])
class RoiAlign(OpDef):
    def _attrs(self, node: Node) -> dict:
        mode = _s(node, "mode", "avg")
        if mode not in ("avg", "max"):
            raise ModelError(f"RoiAlign {node.name!r}: mode must be avg or max, got {mode!r}")
        ctm = _s(node, "coordinate_transformation_mode", "half_pixel") if node.version >= 16 else "output_half_pixel"
        if ctm not in ("half_pixel", "output_half_pixel"):
            raise ModelError(
                f"RoiAlign {node.name!r}: coordinate_transformation_mode must be half_pixel or output_half_pixel"
            )
        oh, ow = int(node.attr("output_height", 1)), int(node.attr("output_width", 1))
        ratio = int(node.attr("sampling_ratio", 0))
        if oh < 1 or ow < 1 or ratio < 0:
            raise ModelError(
                f"RoiAlign {node.name!r}: output_height {oh} and output_width {ow} must be positive "
                f"and sampling_ratio {ratio} not negative"
            )
        scale = float(node.attr("spatial_scale", 1.0))
        return {
            "max": mode == "max",
            "half_pixel": ctm == "half_pixel",
            "oh": oh,
            "ow": ow,
            "ratio": ratio,
            "scale": scale,
        }

    def infer(self, node):
        x, rois, idx = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        if x.dtype not in FLOATS or rois.dtype != x.dtype:
            raise UnsupportedError(f"RoiAlign {node.name!r}: X {x.dtype} and rois {rois.dtype} must be one float type")
        if idx.dtype not in (INT64, INT32):
            raise ModelError(f"RoiAlign {node.name!r}: batch_indices must be int64, got {idx.dtype}")
        if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 4 or idx.shape != (rois.shape[0],):
            raise ShapeError(
                f"RoiAlign {node.name!r}: X {list(x.shape)} must be [N, C, H, W], rois {list(rois.shape)} "
                f"[num_rois, 4] and batch_indices {list(idx.shape)} [num_rois]"
            )
        if rois.shape[0] and (x.shape[2] < 1 or x.shape[3] < 1):
            raise ShapeError(f"RoiAlign {node.name!r}: X {list(x.shape)} has no pixels to sample")
        a = self._attrs(node)
        return [(x.dtype, (rois.shape[0], x.shape[1], a["oh"], a["ow"]))]

    def reference(self, node, inputs):
        x, rois, idx = (np.asarray(v) for v in inputs[:3])
        a = self._attrs(node)
        n, c, h, w = x.shape
        oh, ow = a["oh"], a["ow"]
        y = np.zeros((rois.shape[0], c, oh, ow), dtype=np.float64)
        shift = 0.5 if a["half_pixel"] else 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            for r in range(rois.shape[0]):
                b = int(idx[r])
                if not 0 <= b < n:
                    continue
                x0, y0, x1, y1 = (float(v) * a["scale"] - shift for v in rois[r])
                rw, rh = x1 - x0, y1 - y0
                if not a["half_pixel"]:
                    rw, rh = max(rw, 1.0), max(rh, 1.0)
                gh = a["ratio"] or grid_size(rh, oh)
                gw = a["ratio"] or grid_size(rw, ow)
                if gh == 0 or gw == 0:
                    continue
                vy, ly, hy_, wly, why = axis_samples(y0, rh / oh, gh, oh, h)
                vx, lx, hx_, wlx, whx = axis_samples(x0, rw / ow, gw, ow, w)
                img = x[b].astype(np.float64)
                mask = (vy[:, :, None, None] & vx[None, None, :, :]).astype(np.float64)
                terms = []
                for ry, wy in ((ly, wly), (hy_, why)):
                    for rx, wx in ((lx, wlx), (hx_, whx)):
                        weight = wy[:, :, None, None] * wx[None, None, :, :] * mask
                        terms.append(weight * img[:, ry[:, :, None, None], rx[None, None, :, :]])
                if a["max"]:
                    val = np.maximum.reduce(terms)  # [c, oh, gh, ow, gw]
                    y[r] = val.max(axis=(2, 4))
                else:
                    y[r] = sum(terms).sum(axis=(2, 4)) / max(gh * gw, 1)
        return [y.astype(x.dtype)]

    def lower(self, node):
        x, rois, idx = node.inputs[:3]
        y = node.outputs[0]
        require_c(node, x, rois, idx, y)
        if y.size == 0:
            return []
        a = self._attrs(node)
        n, c, h, w = x.shape
        params = {
            "ctype": x.dtype.c,
            "N": n,
            "C": c,
            "H": h,
            "W": w,
            "OH": a["oh"],
            "OW": a["ow"],
            "total": y.size,
            "scale": c_literal(a["scale"], x.dtype),
            "shift": c_literal(0.5 if a["half_pixel"] else 0.0, x.dtype),
            "half_pixel": a["half_pixel"],
            "ratio": a["ratio"],
            "grid_limit": GRID_LIMIT,
            "ceil": cmath("ceil", x.dtype),
            "max_mode": a["max"],
        }
        return [Kernel("roialign", "roialign", [x, rois, idx], [y], params, ["X", "rois", "batch_indices", "Y"])]
