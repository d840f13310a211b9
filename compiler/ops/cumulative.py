"""Running sums and products along one axis: CumSum and CumProd, on the "scan" kernel family.

The axis is input 1, a scalar that must be known at compile time. Each line along the axis is one work item,
accumulated in order (or in reverse order with `reverse`); with `exclusive` an output holds the accumulation of
the elements before it, so the first is 0 (CumSum) or 1 (CumProd). Floats accumulate in their own type, as
onnxruntime does; integers accumulate modulo 2^64 and are narrowed per output, which wraps exactly as
arithmetic in the element type would, without signed overflow in C.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.graph import Node
from .common import const_input, need_input, norm_axis, require_c
from .registry import Kernel, OpDef, register


def line_base(outer: int, n: int, inner: int) -> str:
    """C text: the first element of line `line` in a tensor viewed as [outer, n, inner], lines over (outer, inner)."""
    if inner == 1:
        return f"line * {n}" if outer > 1 else "0"
    if outer == 1:
        return "line"
    return f"(line / {inner}) * {n * inner} + line % {inner}"


def split_at(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """shape viewed as [outer, n, inner] around `axis`."""
    return (
        int(np.prod(shape[:axis], dtype=np.int64)),
        shape[axis],
        int(np.prod(shape[axis + 1 :], dtype=np.int64)),
    )


class Cumulative(OpDef):
    op = "+"
    identity = 0

    def _axis(self, node: Node) -> int:
        x = need_input(node, 0)
        data = np.asarray(const_input(node, 1, "axis"))
        if data.size != 1 or data.dtype.kind not in "iu":
            raise ModelError(f"{node.op} {node.name!r}: axis must be one integer, got {data.tolist()}")
        return norm_axis(node, int(data.reshape(-1)[0]), x.rank)

    def infer(self, node):
        x = need_input(node, 0)
        need_input(node, 1)
        if x.dtype.kind not in ("float", "int", "uint") or x.rank == 0:
            raise UnsupportedError(f"{node.op} {node.name!r}: X {x.dtype}{list(x.shape)} is not supported")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x, axis = inputs[0], self._axis(node)
        if node.attr("reverse", 0):
            x = np.flip(x, axis)
        fn = np.cumsum if self.op == "+" else np.cumprod
        with np.errstate(all="ignore"):
            y = fn(x, axis=axis, dtype=x.dtype)
        if node.attr("exclusive", 0) and x.shape[axis]:
            first = np.full_like(np.take(y, [0], axis=axis), self.identity)
            y = np.concatenate([first, np.take(y, range(x.shape[axis] - 1), axis=axis)], axis=axis)
        if node.attr("reverse", 0):
            y = np.flip(y, axis)
        return [np.ascontiguousarray(y)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        outer, n, inner = split_at(x.shape, self._axis(node))
        reverse = bool(node.attr("reverse", 0))
        step = f"({n - 1} - s)" if reverse else "s"
        acc = x.dtype.c if x.dtype.is_float else "uint64_t"
        params = {
            "acc_ctype": acc,
            "load": "X[at]" if acc == x.dtype.c else f"({acc})X[at]",
            "store": "acc" if acc == x.dtype.c else f"({x.dtype.c})acc",
            "op": self.op,
            "identity": str(self.identity),
            "n": n,
            "base": line_base(outer, n, inner),
            "offset": step if inner == 1 else f"{step} * {inner}",
            "exclusive": bool(node.attr("exclusive", 0)),
            "work_items": outer * inner,
        }
        return [Kernel("scan", node.op.lower(), [x], [y], params, ["X", "Y"])]


@register("CumSum", since=[11, 14])
class CumSum(Cumulative):
    op = "+"
    identity = 0


@register("CumProd", since=[26])
class CumProd(Cumulative):
    op = "*"
    identity = 1
