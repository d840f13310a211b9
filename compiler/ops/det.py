"""Det: the determinant of each square matrix in a batch [*, M, M], on the "det" kernel family.

One work item per matrix: the matrix is copied into a double scratch buffer and factored by Gaussian
elimination with partial pivoting (LU, as LAPACK's getrf); the determinant is the product of the pivots,
negated once per row swap. Like getrf, the first entry of largest magnitude is the pivot and a zero pivot
skips its elimination step, so a singular matrix gives 0 and a NaN entry propagates. float16 and bfloat16
are computed in float32 (passes/legalize_types.py), and every float type is factored in double.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT64
from ..ir.graph import Value
from .common import need_input, require_c
from .registry import Kernel, OpDef, register


@register("Det", since=[11, 22])
class Det(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        if not x.dtype.is_float:
            raise UnsupportedError(f"Det {node.name!r}: element type {x.dtype} is not supported (float types only)")
        if x.rank < 2 or x.shape[-1] != x.shape[-2]:
            raise ShapeError(f"Det {node.name!r}: X {list(x.shape)} is not a batch of square matrices [*, M, M]")
        return [(x.dtype, x.shape[:-2])]

    def reference(self, node, inputs):
        x = inputs[0]
        return [np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x, y)
        if y.size == 0:
            return []
        n = x.shape[-1]
        lu = Value(f"{y.name}:lu", FLOAT64, (y.size, n, n))
        params = {"ctype": x.dtype.c, "n": n, "work_items": y.size}
        return [Kernel("det", "det", [x], [y, lu], params, ["X", "Y", "LU"])]
