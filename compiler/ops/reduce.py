"""Reductions (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
ReduceLogSumExp, ReduceSumSquare) and ArgMax/ArgMin: one "reduce" kernel family.

The kernel walks the kept axes (outer loops, one output element each) and the reduced axes (inner loops),
with an accumulator `acc` initialised by `init`, updated per element `v` by `update`, and turned into the
output by `final` (`count` is the number of reduced elements). Axes come from the `axes` attribute in the
older opsets and from input 1 (a compile-time constant) in the newer ones; no axes means all of them, or the
identity where noop_with_empty_axes is set. An empty reduction gives the op's identity element (0 for sums,
1 for products, -inf/+inf for max/min and the logarithms of empty sums), as numpy does.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import INT64
from ..ir.graph import Node
from .common import c_literal, const_input, contiguous_strides, copy_kernel, index_expr, norm_axis
from .registry import Kernel, OpDef, register

_AXES_INPUT_SINCE = {"ReduceSum": 13}  # the others take axes as an input from opset 18


def _axes(node: Node, rank: int) -> list[int] | None:
    """The reduced axes, sorted; None for the identity (empty axes with noop_with_empty_axes)."""
    if node.version >= _AXES_INPUT_SINCE.get(node.op, 18):
        data = const_input(node, 1, "axes")
        axes = [] if data is None else [int(a) for a in np.asarray(data).reshape(-1)]
    else:
        axes = list(node.attr("axes", []) or [])
    if not axes:
        return None if node.attr("noop_with_empty_axes", 0) else list(range(rank))
    normed = sorted({norm_axis(node, a, rank) for a in axes})
    if len(normed) != len(axes):
        raise ModelError(f"{node.op} {node.name!r}: axes {axes} repeat an axis")
    return normed


def _out_shape(shape, axes, keepdims: bool) -> tuple[int, ...]:
    return tuple(1 if a in axes else d for a, d in enumerate(shape) if keepdims or a not in axes)


def _loops(shape, axes) -> dict:
    strides = contiguous_strides(shape)
    kept = [a for a in range(len(shape)) if a not in axes and shape[a] != 1]
    red = [a for a in axes if shape[a] != 1]
    return {
        "outer": [shape[a] for a in kept],
        "base": index_expr(0, [strides[a] for a in kept]).replace("i", "o"),
        "inner": [shape[a] for a in red],
        "offset": index_expr(0, [strides[a] for a in red]).replace("i", "r"),
        "count": math.prod(shape[a] for a in axes),
    }


class Reduce(OpDef):
    kinds: tuple[str, ...] = ("float", "int", "uint")
    float_acc = False  # accumulate in double whatever the input type (logarithms, square roots)

    def init(self, t) -> str:
        return "0"

    def update(self, t) -> str:
        return "acc += v"

    def final(self, t) -> str:
        return "acc"

    def np_fn(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    premax = False  # a first pass computes m, the maximum (log-sum-exp)

    def infer(self, node):
        x = node.inputs[0]
        if x.dtype.kind not in self.kinds:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {x.dtype} is not supported")
        axes = _axes(node, len(x.shape))
        if axes is None:
            return [(x.dtype, x.shape)]
        return [(x.dtype, _out_shape(x.shape, axes, bool(node.attr("keepdims", 1))))]

    def reference(self, node, inputs):
        x = inputs[0]
        axes = _axes(node, x.ndim)
        if axes is None:
            return [x]
        with np.errstate(all="ignore"):
            y = self.np_fn(x, tuple(axes))
        return [np.asarray(y).reshape(node.outputs[0].shape).astype(x.dtype)]

    def acc_type(self, t) -> str:
        if t.is_float or self.float_acc:
            return "double"
        if t.kind == "bool":
            return "bool"
        return "uint64_t" if t.kind == "uint" else "int64_t"

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        axes = _axes(node, len(x.shape))
        if axes is None:
            return [copy_kernel(node.op.lower(), x, y)]
        t = x.dtype
        params = {
            **_loops(x.shape, axes),
            "in_ctype": t.c,
            "out_ctype": y.dtype.c,
            "acc_ctype": self.acc_type(t),
            "init": self.init(t),
            "update": self.update(t),
            "final": self.final(t),
            "premax": self.premax,
            "arg": False,
        }
        return [Kernel("reduce", node.op.lower(), [x], [y], params)]


def _reduce(op: str, since, np_fn, **methods) -> None:
    attrs = {"np_fn": lambda self, x, axes: np_fn(x, axes)}
    for key, value in methods.items():
        attrs[key] = (lambda v: lambda self, t: v(t))(value) if callable(value) else value
    register(op, since=since)(type(op, (Reduce,), attrs))


def _limit(t, which: str) -> str:
    if t.is_float:
        return "-INFINITY" if which == "min" else "INFINITY"
    if t.kind == "bool":
        return "false" if which == "min" else "true"
    info = np.iinfo(t.np)
    return c_literal(int(info.min if which == "min" else info.max), t)


def _pick(t, op: str) -> str:
    nan = " || v != v" if t.is_float else ""  # NaN propagates, as in numpy
    return f"if (v {op} acc{nan}) acc = v"


_ALL = ("float", "int", "uint", "bool")
_reduce("ReduceSum", [1, 11, 13], lambda x, a: np.sum(x, axis=a, dtype=x.dtype))
_reduce(
    "ReduceMean",
    [1, 11, 13, 18],
    lambda x, a: np.mean(x, axis=a),
    final=lambda t: "acc / count" if t.is_float else "count == 0 ? 0 : acc / count",
)
_reduce(
    "ReduceMax",
    [1, 11, 12, 13, 18, 20],
    lambda x, a: np.max(x, axis=a, initial=_np_limit(x, "min")),
    kinds=_ALL,
    init=lambda t: _limit(t, "min"),
    update=lambda t: _pick(t, ">"),
    acc_type=lambda t: t.c,
)
_reduce(
    "ReduceMin",
    [1, 11, 12, 13, 18, 20],
    lambda x, a: np.min(x, axis=a, initial=_np_limit(x, "max")),
    kinds=_ALL,
    init=lambda t: _limit(t, "max"),
    update=lambda t: _pick(t, "<"),
    acc_type=lambda t: t.c,
)
_reduce(
    "ReduceProd",
    [1, 11, 13, 18],
    lambda x, a: np.prod(x, axis=a, dtype=x.dtype),
    init=lambda t: "1",
    update=lambda t: "acc *= v",
)
_reduce(
    "ReduceL1",
    [1, 11, 13, 18],
    lambda x, a: np.sum(np.abs(x), axis=a, dtype=x.dtype),
    update=lambda t: "acc += v < 0 ? -v : v" if t.kind != "uint" else "acc += v",
)
_reduce(
    "ReduceL2",
    [1, 11, 13, 18],
    lambda x, a: np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=a)),
    float_acc=True,
    update=lambda t: "acc += (double)v * v",
    final=lambda t: "sqrt(acc)",
)
_reduce(
    "ReduceSumSquare",
    [1, 11, 13, 18],
    lambda x, a: np.sum(np.square(x), axis=a, dtype=x.dtype),
    update=lambda t: "acc += v * v",
)
_reduce(
    "ReduceLogSum",
    [1, 11, 13, 18, 28],
    lambda x, a: np.log(np.sum(x.astype(np.float64), axis=a)),
    float_acc=True,
    final=lambda t: "log(acc)",
)
_reduce(
    "ReduceLogSumExp",
    [1, 11, 13, 18, 28],
    lambda x, a: _np_logsumexp(x.astype(np.float64), a),
    float_acc=True,
    premax=True,
    update=lambda t: "acc += exp((double)v - m)",
    final=lambda t: "(m == -INFINITY || m == INFINITY) ? m : m + log(acc)",
)


def _np_limit(x: np.ndarray, which: str):
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        return -np.inf if which == "min" else np.inf
    if x.dtype.kind == "b":
        return which != "min"
    info = np.iinfo(x.dtype)
    return info.min if which == "min" else info.max


def _np_logsumexp(x: np.ndarray, axes) -> np.ndarray:
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    finite = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - finite), axis=axes, keepdims=True)) + finite
    return np.where(np.isfinite(m), out, m).squeeze(axis=axes)


class ArgReduce(OpDef):
    """ArgMax / ArgMin along one axis: the index (int64) of the first (or last) extreme element."""

    better = ">"

    def _axis(self, node: Node, rank: int) -> int:
        return norm_axis(node, node.attr("axis", 0), rank)

    def infer(self, node):
        x = node.inputs[0]
        if x.dtype.kind not in ("float", "int", "uint"):
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {x.dtype} is not supported")
        axis = self._axis(node, len(x.shape))
        if x.shape[axis] == 0:
            raise ModelError(f"{node.op} {node.name!r}: the reduced axis {axis} is empty")
        return [(INT64, _out_shape(x.shape, [axis], bool(node.attr("keepdims", 1))))]

    def reference(self, node, inputs):
        x = inputs[0]
        axis = self._axis(node, x.ndim)
        fn = np.argmax if self.better == ">" else np.argmin
        if node.attr("select_last_index", 0):
            idx = x.shape[axis] - 1 - fn(np.flip(x, axis=axis), axis=axis)
        else:
            idx = fn(x, axis=axis)
        return [np.asarray(idx, dtype=np.int64).reshape(node.outputs[0].shape)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        axis = self._axis(node, len(x.shape))
        op = self.better + ("=" if node.attr("select_last_index", 0) else "")
        loops = _loops(x.shape, [axis])
        if not loops["inner"]:  # a reduced axis of length 1: the index is 0
            loops["inner"], loops["offset"] = [1], "r0"
        params = {
            **loops,
            "in_ctype": x.dtype.c,
            "out_ctype": "int64_t",
            "acc_ctype": x.dtype.c,
            "init": None,  # the first element
            "update": f"if (v {op} acc) {{ acc = v; idx = r0; }}",
            "final": "idx",
            "premax": False,
            "arg": True,
        }
        return [Kernel("reduce", node.op.lower(), [x], [y], params)]


@register("ArgMax", since=[1, 11, 12, 13])
class ArgMax(ArgReduce):
    better = ">"


@register("ArgMin", since=[1, 11, 12, 13])
class ArgMin(ArgReduce):
    better = "<"
