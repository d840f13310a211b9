"""Gemm and MatMul (batched, broadcasting)."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.graph import Node, Value
from .common import broadcast_shapes, broadcast_strides, c_literal, coalesce, contiguous_strides, need_input, require_c
from .registry import Kernel, OpDef, register


def gemm_kernel(
    node: Node,
    a: Value,
    b: Value,
    y: Value,
    m: int,
    n: int,
    k: int,
    a_strides: tuple[int, int],
    b_strides: tuple[int, int],
    batch: tuple[list[int], list[list[int]]] = ([], [[], [], []]),
    c: Value | None = None,
    c_strides: tuple[int, int] = (0, 0),
    alpha: float = 1.0,
    beta: float = 1.0,
) -> Kernel:
    """Y[i, j] = alpha * sum_k A[i, k] * B[k, j] + beta * C[i, j], over batch loops.

    Operands are addressed by (row, column) strides; `batch` gives the batch extents and, per operand
    (Y, A, B), the batch strides.
    """
    require_c(node, a, b, y, c)
    if y.dtype.kind == "bool":
        raise UnsupportedError(f"{node.op} {node.name!r}: element type bool is not supported")
    dims, strides = batch
    params = {
        "ctype": y.dtype.c,
        "M": m,
        "N": n,
        "K": k,
        "a_rs": a_strides[0],
        "a_cs": a_strides[1],
        "b_rs": b_strides[0],
        "b_cs": b_strides[1],
        "c_rs": c_strides[0],
        "c_cs": c_strides[1],
        "batch_dims": dims,
        "y_batch": strides[0],
        "a_batch": strides[1],
        "b_batch": strides[2],
        "alpha": None if alpha == 1.0 else c_literal(alpha, y.dtype),
        "beta": None if beta == 1.0 else c_literal(beta, y.dtype),
        "has_c": c is not None and beta != 0.0,
    }
    inputs = [a, b] + ([c] if params["has_c"] else [])
    names = ["A", "B"] + (["C"] if params["has_c"] else []) + ["Y"]
    return Kernel("gemm", node.op.lower(), inputs, [y], params, names)


@register("Gemm", since=[7, 9, 11, 13])
class Gemm(OpDef):
    def _dims(self, node: Node) -> tuple[int, int, int]:
        a, b = need_input(node, 0), need_input(node, 1)
        if a.rank != 2 or b.rank != 2:
            raise ShapeError(f"Gemm {node.name!r}: A and B must be 2-D, got {list(a.shape)} and {list(b.shape)}")
        m, ka = a.shape[::-1] if node.attr("transA", 0) else a.shape
        kb, n = b.shape[::-1] if node.attr("transB", 0) else b.shape
        if ka != kb:
            raise ShapeError(f"Gemm {node.name!r}: inner dims differ ({list(a.shape)} x {list(b.shape)})")
        return m, n, ka

    def infer(self, node):
        m, n, _ = self._dims(node)
        c = node.input(2)
        if c is not None:
            broadcast_shapes(node, c.shape, (m, n))
            if broadcast_shapes(node, c.shape, (m, n)) != (m, n):
                raise ShapeError(f"Gemm {node.name!r}: C {list(c.shape)} does not broadcast to {[m, n]}")
        return [(node.inputs[0].dtype, (m, n))]

    def reference(self, node, inputs):
        a, b = inputs[0], inputs[1]
        a = a.T if node.attr("transA", 0) else a
        b = b.T if node.attr("transB", 0) else b
        y = node.attr("alpha", 1.0) * (a @ b)
        if len(inputs) > 2 and inputs[2] is not None:
            y = y + node.attr("beta", 1.0) * inputs[2]
        return [y.astype(inputs[0].dtype)]

    def lower(self, node):
        a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
        m, n, k = self._dims(node)
        a_strides = (1, a.shape[1]) if node.attr("transA", 0) else (a.shape[1], 1)
        b_strides = (1, b.shape[1]) if node.attr("transB", 0) else (b.shape[1], 1)
        c = node.input(2)
        c_strides = tuple(broadcast_strides(c.shape, (m, n))) if c is not None else (0, 0)
        return [
            gemm_kernel(
                node,
                a,
                b,
                y,
                m,
                n,
                k,
                a_strides,
                b_strides,
                c=c,
                c_strides=c_strides,
                alpha=node.attr("alpha", 1.0),
                beta=node.attr("beta", 1.0),
            )
        ]


@register("MatMul", since=[1, 9, 13])
class MatMul(OpDef):
    def _shapes(self, node: Node):
        a, b = need_input(node, 0), need_input(node, 1)
        if a.rank == 0 or b.rank == 0:
            raise ShapeError(f"MatMul {node.name!r}: scalar operands are not allowed")
        if a.dtype != b.dtype:
            raise ModelError(f"MatMul {node.name!r}: A is {a.dtype}, B is {b.dtype}")
        a2 = (1,) + a.shape if a.rank == 1 else a.shape
        b2 = b.shape + (1,) if b.rank == 1 else b.shape
        if a2[-1] != b2[-2]:
            raise ShapeError(f"MatMul {node.name!r}: inner dims differ ({list(a.shape)} x {list(b.shape)})")
        batch = broadcast_shapes(node, a2[:-2], b2[:-2])
        out = batch + (a2[-2],) * (a.rank > 1) + (b2[-1],) * (b.rank > 1)
        return a2, b2, batch, out

    def infer(self, node):
        return [(node.inputs[0].dtype, self._shapes(node)[3])]

    def reference(self, node, inputs):
        return [np.matmul(inputs[0], inputs[1]).astype(inputs[0].dtype)]

    def lower(self, node):
        a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
        a2, b2, batch, _ = self._shapes(node)
        m, k, n = a2[-2], a2[-1], b2[-1]
        y_batch = [s * m * n for s in contiguous_strides(batch)]
        a_batch = [s * m * k for s in broadcast_strides(a2[:-2], batch)]
        b_batch = [s * k * n for s in broadcast_strides(b2[:-2], batch)]
        dims, strides = coalesce(batch, [y_batch, a_batch, b_batch])
        return [gemm_kernel(node, a, b, y, m, n, k, (k, 1), (n, 1), (dims, strides))]
