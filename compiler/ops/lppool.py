"""LpPool: the p-norm of each window, (sum |x|^p)^(1/p), 1-D to 3-D, on the "indexed" kernel family.

The window geometry (kernel_shape, strides, pads, auto_pad, dilations, ceil_mode) is MaxPool's and
AveragePool's (pool.py). Padding contributes |0|^p = 0, so only the positions inside the input are summed;
the sum runs in double whatever the element type.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir.graph import Node
from .common import contiguous_strides
from .indexed import flat, indexed_kernel
from .pool import Pool
from .registry import register


def window_index(i: int, stride: int, pad: int, dilation: int) -> str:
    """C text: the input position o*stride - pad + k*dilation along spatial axis i."""
    text = f"o{2 + i}" if stride == 1 else f"o{2 + i} * {stride}"
    if pad:
        text += f" - {pad}"
    return text + (f" + k{i}" if dilation == 1 else f" + k{i} * {dilation}")


@register("LpPool", since=[2, 11, 18, 22])
class LpPool(Pool):
    mode = "lp"

    def _p(self, node: Node) -> int:
        p = node.attr("p", 2)
        if not isinstance(p, int) or p < 1:
            raise ModelError(f"LpPool {node.name!r}: p must be a positive integer, got {p!r}")
        return p

    def infer(self, node):
        self._p(node)
        return super().infer(node)[:1]

    def reference(self, node, inputs):
        x, p = inputs[0].astype(np.float64), self._p(node)
        kernel, out, begin, _, strides, dil = self._geometry(node)
        r = len(kernel)
        # Zeros past the end as far as the last window reaches (ceil_mode windows may overhang the pads).
        reach = [(out[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 for i in range(r)]
        after = [max(reach[i] - x.shape[2 + i] - begin[i], 0) for i in range(r)]
        xp = np.pad(np.abs(x) ** p, [(0, 0), (0, 0)] + list(zip(begin, after)))
        acc = np.zeros(x.shape[:2] + out)
        for pos in np.ndindex(*kernel):
            window = tuple(
                slice(pos[i] * dil[i], pos[i] * dil[i] + (out[i] - 1) * strides[i] + 1, strides[i]) for i in range(r)
            )
            acc += xp[(slice(None), slice(None)) + window]
        return [(acc ** (1.0 / p)).astype(inputs[0].dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        p = self._p(node)
        kernel, _, begin, _, strides, dil = self._geometry(node)
        spatial = x.shape[2:]
        r = len(kernel)
        x_strides = contiguous_strides(x.shape)
        lets = ["double acc = 0;"]
        for i in range(r):
            pad = "  " * i
            lets += [
                f"{pad}for (int64_t k{i} = 0; k{i} < {kernel[i]}; ++k{i}) {{",
                f"{pad}  const int64_t j{i} = {window_index(i, strides[i], begin[i], dil[i])};",
                f"{pad}  if (j{i} < 0 || j{i} >= {spatial[i]}) continue;",
            ]
        at = flat([("o0", x_strides[0]), ("o1", x_strides[1])] + [(f"j{i}", x_strides[2 + i]) for i in range(r)])
        power = {1: "v", 2: "v * v"}.get(p, f"pow(v, {p}.0)")
        lets += [f"{'  ' * r}const double v = fabs((double)in0[{at}]);", f"{'  ' * r}acc += {power};"]
        lets += [f"{'  ' * i}}}" for i in reversed(range(r))]
        root = {1: "acc", 2: "sqrt(acc)"}.get(p, f"pow(acc, 1.0 / {p})")
        return [indexed_kernel(node, [x], y, root, lets)]
