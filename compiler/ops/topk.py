"""Selection along one axis: TopK and Hardmax, on the "topk" kernel family (one work item per line).

TopK keeps the k largest (or smallest) elements of each line, best first, by insertion into the outputs; lines
are read in index order and an element only moves ahead of a strictly worse one, so equal values keep the
smaller index first, as onnx's reference does. The output is always sorted (sorted=0 allows any order).
Hardmax marks the first maximum of each line with 1. NaN ranks above every number in both, as numpy's sort
and argmax order it (onnx's references): it is the largest element and never among the k smallest while
numbers remain.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import INT64, DType
from ..ir.graph import Node
from .common import const_input, need_input, norm_axis, require_c
from .cumulative import line_base, split_at
from .registry import Kernel, OpDef, register


def beats(a: str, b: str, dtype: DType, largest: bool) -> str:
    """C text: `a` ranks strictly before `b` (NaN above every number)."""
    if not dtype.is_float:
        return f"{a} {'>' if largest else '<'} {b}"
    if largest:
        return f"{a} > {b} || ({a} != {a} && {b} == {b})"
    return f"{a} < {b} || ({b} != {b} && {a} == {a})"


def strided(i: str, inner: int) -> str:
    """C text: element `i` of a line whose elements are `inner` apart."""
    if inner == 1:
        return i
    return f"({i}) * {inner}" if " " in i else f"{i} * {inner}"


def topk_kernel(name: str, node: Node, outer: int, n: int, inner: int, k: int, largest: bool, onehot: bool) -> Kernel:
    """A "topk" kernel over the lines of X viewed as [outer, n, inner]: the k best, or a one-hot of the best."""
    x = node.inputs[0]
    require_c(node, x)
    params = {
        "ctype": x.dtype.c,
        "n": n,
        "k": k,
        "x_base": line_base(outer, n, inner),
        "y_base": line_base(outer, k, inner),
        "at": {i: strided(i, inner) for i in ("j", "p", "p - 1")},
        "beats_last": beats("v", f"values[{(k - 1) * inner}]", x.dtype, largest),
        "beats_prev": beats("v", f"values[{strided('p - 1', inner)}]", x.dtype, largest),
        "beats_best": beats("v", f"x[{strided('best', inner)}]", x.dtype, largest),
        "onehot": onehot,
        "work_items": outer * inner,
    }
    outputs = node.outputs[:1] if onehot else node.outputs[:2]
    names = ["X", "Y"] if onehot else ["X", "Values", "Indices"]
    return Kernel("topk", name, [x], outputs, params, names)


def sort_order(x: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    """Indices that sort `x` along `axis`, best first, equal values by smaller index, NaN as the largest."""
    if not largest:
        return np.argsort(x, axis=axis, kind="stable")
    # A stable ascending sort of the reversed line, read backwards: descending, ties by smaller index.
    order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return x.shape[axis] - 1 - np.flip(order, axis)


@register("TopK", since=[1, 10, 11, 24])
class TopK(OpDef):
    def _k(self, node: Node) -> int:
        x = need_input(node, 0)
        if node.version < 10:
            k = node.attr("k")
            if k is None:
                raise ModelError(f"TopK {node.name!r}: attribute k is required")
        else:
            data = np.asarray(const_input(node, 1, "K"))
            if data.size != 1 or data.dtype.kind not in "iu":
                raise ModelError(f"TopK {node.name!r}: K must be one integer, got {data.tolist()}")
            k = data.reshape(-1)[0]
        k, n = int(k), x.shape[self._axis(node)]
        if not 0 <= k <= n:
            raise ShapeError(f"TopK {node.name!r}: k = {k} is outside [0, {n}], the length of the axis")
        return k

    def _axis(self, node: Node) -> int:
        return norm_axis(node, node.attr("axis", -1), need_input(node, 0).rank)

    def infer(self, node):
        x = need_input(node, 0)
        if x.dtype.kind not in ("float", "int", "uint") or x.rank == 0:
            raise UnsupportedError(f"TopK {node.name!r}: X {x.dtype}{list(x.shape)} is not supported")
        axis = self._axis(node)
        shape = x.shape[:axis] + (self._k(node),) + x.shape[axis + 1 :]
        return [(x.dtype, shape), (INT64, shape)]

    def reference(self, node, inputs):
        x, axis, k = inputs[0], self._axis(node), self._k(node)
        order = np.take(sort_order(x, axis, bool(node.attr("largest", 1))), range(k), axis=axis)
        return [np.take_along_axis(x, order, axis=axis), order.astype(np.int64)]

    def lower(self, node):
        x = node.inputs[0]
        k = self._k(node)
        if k == 0 or x.size == 0:
            return []
        outer, n, inner = split_at(x.shape, self._axis(node))
        return [topk_kernel("topk", node, outer, n, inner, k, bool(node.attr("largest", 1)), False)]


@register("Hardmax", since=[1, 11, 13])
class Hardmax(OpDef):
    """1 at the first maximum of each line, 0 elsewhere; before opset 13 a line is [axis:] flattened."""

    def _split(self, node: Node) -> tuple[int, int, int]:
        x = need_input(node, 0)
        if node.version >= 13:
            return split_at(x.shape, norm_axis(node, node.attr("axis", -1), x.rank))
        axis = norm_axis(node, node.attr("axis", 1), x.rank)
        return split_at((*x.shape[:axis], int(np.prod(x.shape[axis:], dtype=np.int64)), 1), axis)

    def infer(self, node):
        x = need_input(node, 0)
        if not x.dtype.is_float:
            raise UnsupportedError(f"Hardmax {node.name!r}: element type {x.dtype} is not supported")
        self._split(node)
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x = inputs[0]
        outer, n, inner = self._split(node)
        y = np.zeros((outer, n, inner), dtype=x.dtype)
        if y.size:
            best = np.argmax(x.reshape(outer, n, inner), axis=1)
            np.put_along_axis(y, best[:, None, :], 1, axis=1)
        return [y.reshape(x.shape)]

    def lower(self, node):
        if node.inputs[0].size == 0:
            return []
        outer, n, inner = self._split(node)
        return [topk_kernel("hardmax", node, outer, n, inner, n, True, True)]
