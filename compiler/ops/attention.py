"""ScaledDotProductAttention (domain "mlcc"): Y = softmax(scale * Q @ KT + mask, last axis) @ V in one kernel,
made by passes/attention.py from the MatMul, Mul/Div, Add, Softmax, MatMul pattern exporters write.

Inputs Q [..., Sq, D], KT [..., D, Skv] (K already transposed, as the pattern has it), V [..., Skv, Dv] and an
optional additive mask broadcasting to [..., Sq, Skv]; the batch dims of all four broadcast. Attributes:
scale (float) and the c target's register tile mr, nr. float32 only.

The kernel (templates/c/kernels/attention.c.j2) never stores the [Sq, Skv] scores: per batch item a task packs
KT and V into NR-wide strips, then for each panel of MR query rows computes the scores tile on the GEMM
engine, scales, masks and exponentiates it in place, multiplies it by V on the engine and divides each
output row by its sum. Tasks are batch items x chunks of query rows, run on the model's thread pool.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ir.dtypes import FLOAT32
from ..ir.graph import Node
from .common import broadcast_shapes, broadcast_strides, c_literal, cmath, coalesce, need_input
from .registry import INTERNAL_DOMAIN, Kernel, OpDef, register

ATTENTION_DOMAIN = INTERNAL_DOMAIN


def _padded(n: int, nr: int) -> int:
    return -(-n // nr) * nr


@register("ScaledDotProductAttention", since=1, domain=ATTENTION_DOMAIN)
class ScaledDotProductAttention(OpDef):
    def _shapes(self, node: Node):
        q, kt, v = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        mask = node.input(3)
        if min(q.rank, kt.rank, v.rank) < 2 or q.shape[-1] != kt.shape[-2] or kt.shape[-1] != v.shape[-2]:
            raise ShapeError(
                f"ScaledDotProductAttention {node.name!r}: Q {list(q.shape)}, KT {list(kt.shape)} and V "
                f"{list(v.shape)} do not chain"
            )
        if any(x.dtype != FLOAT32 for x in (q, kt, v, mask) if x is not None):
            raise ShapeError(f"ScaledDotProductAttention {node.name!r}: every input must be float32")
        sq, d, skv, dv = q.shape[-2], q.shape[-1], kt.shape[-1], v.shape[-1]
        batch = broadcast_shapes(node, q.shape[:-2], kt.shape[:-2], v.shape[:-2])
        if mask is not None:
            if mask.rank > len(batch) + 2:
                batch = broadcast_shapes(node, batch, mask.shape[:-2])
            full = broadcast_shapes(node, batch + (sq, skv), mask.shape)
            if full[-2:] != (sq, skv):
                raise ShapeError(f"ScaledDotProductAttention {node.name!r}: mask {list(mask.shape)} does not fit")
            batch = full[:-2]
        return batch, sq, d, skv, dv

    def infer(self, node):
        batch, sq, _, _, dv = self._shapes(node)
        return [(FLOAT32, batch + (sq, dv))]

    def reference(self, node, inputs):
        q, kt, v = (x.astype(np.float64) for x in inputs[:3])
        s = np.matmul(q, kt) * node.attr("scale")
        if len(inputs) > 3 and inputs[3] is not None:
            s = s + inputs[3]
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        return [np.matmul(s / s.sum(axis=-1, keepdims=True), v).astype(np.float32)]

    def lower(self, node):
        q, kt, v, y = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
        mask = node.input(3)
        batch, sq, d, skv, dv = self._shapes(node)
        mr, nr = node.attr("mr"), node.attr("nr")
        operands = [(y, sq * dv), (q, sq * d), (kt, d * skv), (v, skv * dv)]
        strides = [[s * size for s in broadcast_strides(x.shape[:-2], batch)] for x, size in operands]
        if mask is not None:
            full = broadcast_strides(mask.shape, batch + (sq, skv))
            strides.append(full[:-2])
            m_rs, m_cs = full[-2:]
        dims, strides = coalesce(batch, strides)
        skp, dvp = _padded(skv, nr), _padded(dv, nr)
        params = {
            "batch_dims": dims,
            "batch_strides": strides,
            "outer": int(np.prod(batch, dtype=np.int64)),
            "SQ": sq,
            "D": d,
            "SKV": skv,
            "DV": dv,
            "SKP": skp,
            "panels": -(-sq // mr),
            "MR": mr,
            "NR": nr,
            "scale": c_literal(float(node.attr("scale")), FLOAT32),
            "exp": cmath("exp", FLOAT32),
            "has_mask": mask is not None,
            "m_rs": m_rs if mask is not None else 0,
            "m_cs": m_cs if mask is not None else 0,
            "threaded": True,
            # packed KT (D x SKP), packed V (SKV x DVP), the scores of one panel (MR x SKP), MR row sums
            "scratch_floats": d * skp + skv * dvp + mr * skp + mr,
        }
        inputs = [q, kt, v] + ([mask] if mask is not None else [])
        names = ["Q", "KT", "V"] + (["M"] if mask is not None else []) + ["Y"]
        return [Kernel("attention", "attention", inputs, [y], params, names)]
