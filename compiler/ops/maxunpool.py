"""MaxUnpool (opsets 9, 11, 22): a zero fill, then the "scatter" family's update pass (see scatter.py).

Y is zero except where X's elements go: element i of X lands at flat index I[i] of the unpooled shape
(N, C, (D - 1) * stride - pad_begin - pad_end + kernel, ...), as MaxPool's Indices output numbers it. The
optional output_shape input (a compile-time constant) enlarges Y: the unpooled tensor then sits at its
origin, as onnx's reference places it (the node tests expect this; onnxruntime instead reads the indices
in output_shape's numbering). An index outside the unpooled tensor, or a position outside a smaller
output_shape, is skipped, so nothing is written outside Y. Duplicate indices: the last one wins on C; on
CUDA the winner is unspecified (MaxPool's own indices only repeat for overlapping windows, with equal values).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, ShapeError
from ..ir.dtypes import INT64
from ..ir.graph import Node
from .common import const_input, contiguous_strides, loop_kernel, need_input, require_c
from .registry import OpDef, register
from .scatter import scaled, scatter_kernel, update_offset


@register("MaxUnpool", since=[9, 11, 22])
class MaxUnpool(OpDef):
    def _unpooled(self, node: Node) -> tuple[int, ...]:
        x, idx = need_input(node, 0), need_input(node, 1)
        if idx.dtype != INT64:
            raise ModelError(f"MaxUnpool {node.name!r}: I must be int64, got {idx.dtype}")
        if idx.shape != x.shape or x.rank < 3:
            raise ShapeError(
                f"MaxUnpool {node.name!r}: X {list(x.shape)} must be [N, C, D1, ...] and I {list(idx.shape)} alike"
            )
        nd = x.rank - 2
        kernel = node.attr("kernel_shape")
        if kernel is None or len(kernel) != nd:
            raise ModelError(f"MaxUnpool {node.name!r}: kernel_shape must give {nd} sizes, got {kernel}")
        strides = list(node.attr("strides", [1] * nd))
        pads = list(node.attr("pads", [0] * (2 * nd)))
        if len(strides) != nd or len(pads) != 2 * nd or min(strides) < 1 or min(kernel) < 1 or min(pads) < 0:
            raise ModelError(
                f"MaxUnpool {node.name!r}: kernel_shape {list(kernel)}, strides {strides} and pads {pads} "
                f"do not fit {nd} spatial axes"
            )
        spatial = [
            (d - 1) * s - pads[k] - pads[nd + k] + kernel[k] for k, (d, s) in enumerate(zip(x.shape[2:], strides))
        ]
        if min(spatial) < 0:
            raise ShapeError(f"MaxUnpool {node.name!r}: pads {pads} leave a negative output extent {spatial}")
        return (*x.shape[:2], *spatial)

    def _shapes(self, node: Node) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(the unpooled shape the indices number, the output shape)."""
        unpooled = self._unpooled(node)
        given = const_input(node, 2, "output_shape")
        if given is None:
            return unpooled, unpooled
        out = tuple(int(d) for d in np.asarray(given).reshape(-1))
        if len(out) != len(unpooled) or min(out, default=0) < 0:
            raise ShapeError(
                f"MaxUnpool {node.name!r}: output_shape {list(out)} must give {len(unpooled)} sizes, none negative"
            )
        return unpooled, out

    def infer(self, node):
        return [(node.inputs[0].dtype, self._shapes(node)[1])]

    def reference(self, node, inputs):
        x, idx = np.asarray(inputs[0]), np.asarray(inputs[1]).reshape(-1)
        unpooled, out = self._shapes(node)
        flat = np.zeros(math.prod(unpooled), dtype=x.dtype)
        keep = (idx >= 0) & (idx < flat.size)
        flat[idx[keep]] = x.reshape(-1)[keep]
        y = np.zeros(out, dtype=x.dtype)
        common = tuple(slice(0, min(a, b)) for a, b in zip(unpooled, out))
        y[common] = flat.reshape(unpooled)[common]
        return [y]

    def lower(self, node):
        x, idx = node.inputs[:2]
        y = node.outputs[0]
        require_c(node, x, y)
        if y.size == 0:
            return []
        unpooled, out = self._shapes(node)
        zero = loop_kernel("maxunpool_zero", [], y, "0", [y.size], [])
        total = math.prod(unpooled)
        if x.size == 0 or total == 0:
            return [zero]
        lets, ok, dst = (
            [f"const int64_t j = indices[{update_offset(1, x.size, 1)}];"],
            ["j >= 0", f"j < {total}"],
            ["j"],
        )
        if out != unpooled:  # j's position in the unpooled shape, placed at the same position in Y
            dst = []
            for k, (d, s, o) in enumerate(zip(unpooled, contiguous_strides(unpooled), contiguous_strides(out))):
                place = "j" if s == 1 else f"j / {s}"
                lets.append(f"const int64_t q{k} = {place} % {d};" if k else f"const int64_t q{k} = {place};")
                if d > out[k]:
                    ok.append(f"q{k} < {out[k]}")
                dst.append(scaled(f"q{k}", o))
        update = scatter_kernel(node, idx, x, y, (1, x.size, 1), dst, elem=(lets, ok))
        return [zero, update]
