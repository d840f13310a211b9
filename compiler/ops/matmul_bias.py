"""MatMulBias (domain "mlcc"): Y = A @ B + bias for A [..., K], a 2-D B [K, N] and bias [N].

Made by passes/fold_batchnorm.py from MatMul + Add where A has more than two dims (Gemm needs 2-D A).
A is contiguous and B is shared by every batch, so the whole product is one [prod(A[:-1]), K] x [K, N]
GEMM on the gemm kernel family, the bias read as a C operand broadcast over rows.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..ir.graph import Node
from .common import need_input
from .matmul import gemm_kernel
from .registry import OpDef, register


@register("MatMulBias", since=1, domain="mlcc")
class MatMulBias(OpDef):
    def _dims(self, node: Node) -> tuple[int, int, int]:
        a, b, bias = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        if a.rank < 1 or b.rank != 2 or a.shape[-1] != b.shape[0] or bias.shape != (b.shape[1],):
            raise ShapeError(
                f"MatMulBias {node.name!r}: A {list(a.shape)}, B {list(b.shape)} and bias {list(bias.shape)} "
                "should be [..., K], [K, N] and [N]"
            )
        return math.prod(a.shape[:-1]), b.shape[1], b.shape[0]

    def infer(self, node):
        _, n, _ = self._dims(node)
        return [(node.inputs[0].dtype, node.inputs[0].shape[:-1] + (n,))]

    def reference(self, node, inputs):
        a, b, bias = inputs
        return [(np.matmul(a, b) + bias).astype(a.dtype)]

    def lower(self, node):
        a, b, bias = node.inputs
        m, n, k = self._dims(node)
        return [gemm_kernel(node, a, b, node.outputs[0], m, n, k, (k, 1), (n, 1), c=bias, c_strides=(0, 1))]
