"""Ops whose every output element is a function of its own index: Tile, DepthToSpace, SpaceToDepth, Trilu,
EyeLike, Pad (all modes), OneHot, GatherElements and GatherND, on the "indexed" kernel family.

Each op builds C text over the output index o0, o1, ... (`lets`: statements, `expr`: the value); inputs are
read as in0[...], in1[...]. Index inputs are bounds-checked where ONNX allows negative indices: they are
wrapped once, and an index still out of range reads element 0 instead of memory outside the tensor.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import BY_ONNX
from ..ir.graph import Node, Value
from .common import c_literal, const_input, contiguous_strides, need_input, norm_axis, require_c
from .registry import Kernel, OpDef, register


def indexed_kernel(
    node: Node, inputs: list[Value], out: Value, expr: str, lets: list[str] | None = None, pre: list[str] | None = None
) -> Kernel:
    """out[o0, o1, ...] = expr after the statements `lets` in the loop nest; `pre` runs once before it."""
    require_c(node, *inputs, out)
    params = {"dims": list(out.shape), "expr": expr, "lets": lets or [], "out_ctype": out.dtype.c}
    if pre:
        params["pre"] = list(pre)
    return Kernel("indexed", node.op.lower(), inputs, [out], params)


def flat(terms: list[tuple[str, int]]) -> str:
    """sum(index * stride) as C text, skipping zero strides."""
    parts = [f"{i} * {s}" if s != 1 else i for i, s in terms if s != 0]
    return " + ".join(parts) or "0"


def safe_index(raw: str, extent: int) -> str:
    """A C expression for index `raw` into an axis of `extent`: negatives wrapped, anything else out of range -> 0."""
    wrapped = f"({raw} < 0 ? {raw} + {extent} : {raw})"
    return f"(({wrapped}) >= 0 && ({wrapped}) < {extent} ? ({wrapped}) : 0)"


@register("Tile", since=[6, 13])
class Tile(OpDef):
    strings = True

    def _repeats(self, node: Node) -> list[int]:
        x = need_input(node, 0)
        reps = [int(r) for r in const_input(node, 1, "repeats").reshape(-1)]
        if len(reps) != len(x.shape) or any(r < 0 for r in reps):
            raise ShapeError(f"Tile {node.name!r}: repeats {reps} do not fit input shape {list(x.shape)}")
        return reps

    def infer(self, node):
        x = need_input(node, 0)
        return [(x.dtype, tuple(d * r for d, r in zip(x.shape, self._repeats(node))))]

    def reference(self, node, inputs):
        return [np.tile(inputs[0], self._repeats(node))]

    def lower(self, node):
        x = node.inputs[0]
        strides = contiguous_strides(x.shape)
        expr = f"in0[{flat([(f'(o{k} % {d})', s) for k, (d, s) in enumerate(zip(x.shape, strides))])}]"
        return [indexed_kernel(node, [x], node.outputs[0], expr)]


class _BlockRelayout(OpDef):
    """DepthToSpace / SpaceToDepth on NCHW with block size b; mode DCR (default) or CRD."""

    def _crd(self, node: Node) -> bool:
        mode = node.attr("mode", "DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in ("DCR", "CRD"):
            raise ModelError(f"{node.op} {node.name!r}: mode must be DCR or CRD")
        return mode == "CRD"

    def _b(self, node: Node) -> int:
        b = int(node.attr("blocksize", 0))
        if b <= 0:
            raise ModelError(f"{node.op} {node.name!r}: blocksize must be positive")
        return b


@register("DepthToSpace", since=[1, 11, 13])
class DepthToSpace(_BlockRelayout):
    def infer(self, node):
        x, b = need_input(node, 0), self._b(node)
        if len(x.shape) != 4 or x.shape[1] % (b * b):
            raise ShapeError(f"DepthToSpace {node.name!r}: input {list(x.shape)} does not fit blocksize {b}")
        n, c, h, w = x.shape
        return [(x.dtype, (n, c // (b * b), h * b, w * b))]

    def reference(self, node, inputs):
        x, b = inputs[0], self._b(node)
        n, c, h, w = x.shape
        if self._crd(node):
            t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        else:
            t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        return [t.reshape(n, c // (b * b), h * b, w * b)]

    def lower(self, node):
        x, b = node.inputs[0], self._b(node)
        _, c, h, w = x.shape
        oc = c // (b * b)
        # Output (n, oc, y, x): y = i*b + bi, x = j*b + bj; the source channel depends on the mode.
        channel = (
            f"(o1 * {b * b} + (o2 % {b}) * {b} + o3 % {b})"
            if self._crd(node)
            else f"(((o2 % {b}) * {b} + o3 % {b}) * {oc} + o1)"
        )
        expr = f"in0[o0 * {c * h * w} + {channel} * {h * w} + (o2 / {b}) * {w} + o3 / {b}]"
        return [indexed_kernel(node, [x], node.outputs[0], expr)]


@register("SpaceToDepth", since=[1, 13, 28])
class SpaceToDepth(_BlockRelayout):
    def infer(self, node):
        x, b = need_input(node, 0), self._b(node)
        if len(x.shape) != 4 or x.shape[2] % b or x.shape[3] % b:
            raise ShapeError(f"SpaceToDepth {node.name!r}: input {list(x.shape)} does not fit blocksize {b}")
        n, c, h, w = x.shape
        return [(x.dtype, (n, c * b * b, h // b, w // b))]

    def reference(self, node, inputs):
        x, b = inputs[0], self._b(node)
        n, c, h, w = x.shape
        t = x.reshape(n, c, h // b, b, w // b, b)
        t = t.transpose(0, 1, 3, 5, 2, 4) if self._crd(node) else t.transpose(0, 3, 5, 1, 2, 4)
        return [t.reshape(n, c * b * b, h // b, w // b)]

    def lower(self, node):
        x, b = node.inputs[0], self._b(node)
        _, c, h, w = x.shape
        if self._crd(node):  # output channel = (ci * b + bi) * b + bj
            lets = [f"const int64_t ci = o1 / {b * b}, bi = (o1 / {b}) % {b}, bj = o1 % {b};"]
        else:  # output channel = (bi * b + bj) * c + ci
            lets = [f"const int64_t ci = o1 % {c}, bj = (o1 / {c}) % {b}, bi = o1 / {c * b};"]
        expr = f"in0[o0 * {c * h * w} + ci * {h * w} + (o2 * {b} + bi) * {w} + o3 * {b} + bj]"
        return [indexed_kernel(node, [x], node.outputs[0], expr, lets)]


@register("Trilu", since=[14])
class Trilu(OpDef):
    def _k(self, node: Node) -> int:
        k = const_input(node, 1, "k")
        return 0 if k is None else int(np.asarray(k).reshape(-1)[0])

    def infer(self, node):
        x = need_input(node, 0)
        if len(x.shape) < 2:
            raise ShapeError(f"Trilu {node.name!r}: input must have rank 2 or more")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        fn = np.triu if node.attr("upper", 1) else np.tril
        return [fn(inputs[0], self._k(node))]

    def lower(self, node):
        x = node.inputs[0]
        r = len(x.shape)
        keep = f"o{r - 1} - o{r - 2} {'>=' if node.attr('upper', 1) else '<='} {self._k(node)}"
        index = flat([(f"o{i}", s) for i, s in enumerate(contiguous_strides(x.shape))])
        return [indexed_kernel(node, [x], node.outputs[0], f"({keep}) ? in0[{index}] : 0")]


@register("EyeLike", since=[9, 22])
class EyeLike(OpDef):
    def _dtype(self, node: Node):
        x = need_input(node, 0)
        code = node.attr("dtype")
        dtype = x.dtype if code is None else BY_ONNX.get(code)
        if dtype is None:
            raise UnsupportedError(f"EyeLike {node.name!r}: dtype code {code} is not supported")
        return dtype

    def infer(self, node):
        x = need_input(node, 0)
        if len(x.shape) != 2:
            raise ShapeError(f"EyeLike {node.name!r}: input must be 2-D")
        return [(self._dtype(node), x.shape)]

    def reference(self, node, inputs):
        n, m = inputs[0].shape
        return [np.eye(n, m, k=node.attr("k", 0), dtype=self._dtype(node).np)]

    def lower(self, node):
        return [indexed_kernel(node, [], node.outputs[0], f"o1 - o0 == {node.attr('k', 0)} ? 1 : 0")]


@register("Pad", since=[2, 11, 13, 18, 19, 21])
class Pad(OpDef):
    """Modes constant, reflect, edge and wrap; pads (and axes from opset 18) compile-time constants."""

    def _mode(self, node: Node) -> str:
        mode = node.attr("mode", "constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise UnsupportedError(f"Pad {node.name!r}: mode {mode!r} is not supported")
        return mode

    def _pads(self, node: Node) -> tuple[list[int], list[int]]:
        x = need_input(node, 0)
        r = len(x.shape)
        if node.version < 11:
            pads, axes = list(node.attr("pads", [])), list(range(r))
        else:
            pads = [int(p) for p in const_input(node, 1, "pads").reshape(-1)]
            axes_data = const_input(node, 3, "axes") if node.version >= 18 else None
            axes = list(range(r)) if axes_data is None else [norm_axis(node, int(a), r) for a in axes_data.reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise ShapeError(f"Pad {node.name!r}: {len(pads)} pads for {len(axes)} axes")
        begin, end = [0] * r, [0] * r
        for i, a in enumerate(axes):
            begin[a], end[a] = pads[i], pads[i + len(axes)]
        return begin, end

    def _value(self, node: Node) -> float | None:
        """The constant fill value, or None where it is an input computed at run time."""
        if node.version < 11:
            return float(node.attr("value", 0.0))
        v = node.input(2)
        if v is None:
            return 0
        if v.data is None:
            return None
        return 0 if v.data.size == 0 else v.data.reshape(-1)[0].item()

    def infer(self, node):
        x = need_input(node, 0)
        begin, end = self._pads(node)
        self._mode(node)
        shape = tuple(d + b + e for d, b, e in zip(x.shape, begin, end))
        if any(d < 0 for d in shape):
            raise ShapeError(f"Pad {node.name!r}: pads {begin + end} remove more than the input has")
        return [(x.dtype, shape)]

    def reference(self, node, inputs):
        x, mode = inputs[0], self._mode(node)
        begin, end = self._pads(node)
        crop = tuple(slice(max(-b, 0), d - max(-e, 0)) for d, b, e in zip(x.shape, begin, end))
        x = x[crop]
        width = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
        if mode == "constant":
            value = (
                inputs[2].reshape(-1)[0]
                if node.version >= 11 and len(inputs) > 2 and inputs[2] is not None and inputs[2].size
                else self._value(node) or 0
            )
            return [np.pad(x, width, mode="constant", constant_values=value)]
        return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        mode = self._mode(node)
        begin, _ = self._pads(node)
        if mode != "constant" and any(d == 0 for d in x.shape) and y.size:
            raise ShapeError(f"Pad {node.name!r}: mode {mode} needs a non-empty input")
        lets, inside = [], []
        for k, (d, b) in enumerate(zip(x.shape, begin)):
            j = f"j{k}"
            lets.append(f"int64_t {j} = o{k} - {b};")
            if mode == "constant":
                inside.append(f"{j} >= 0 && {j} < {d}")
            elif mode == "edge":
                lets.append(f"{j} = {j} < 0 ? 0 : ({j} >= {d} ? {d - 1} : {j});")
            elif mode == "wrap":
                lets.append(f"{j} = (({j} % {d}) + {d}) % {d};")
            elif d == 1:  # reflect on an axis of one element
                lets.append(f"{j} = 0;")
            else:  # reflect: fold about the first and last element, period 2(d-1)
                lets.append(f"{j} = (({j} % {2 * (d - 1)}) + {2 * (d - 1)}) % {2 * (d - 1)};")
                lets.append(f"{j} = {j} >= {d} ? {2 * (d - 1)} - {j} : {j};")
        index = flat([(f"j{k}", s) for k, s in enumerate(contiguous_strides(x.shape))])
        inputs = [x]
        if mode == "constant":
            value = self._value(node)
            if value is None:  # the fill value arrives at run time
                inputs.append(node.inputs[2])
                fill = "in1[0]"
            else:
                fill = c_literal(value, x.dtype)
            expr = f"({' && '.join(inside) or '1'}) ? in0[{index}] : {fill}"
        else:
            expr = f"in0[{index}]"
        return [indexed_kernel(node, inputs, y, expr, lets)]


@register("OneHot", since=[9, 11])
class OneHot(OpDef):
    def _depth(self, node: Node) -> int:
        depth = const_input(node, 1, "depth")
        d = int(np.asarray(depth).reshape(-1)[0])
        if d <= 0:
            raise ShapeError(f"OneHot {node.name!r}: depth must be positive")
        return d

    def infer(self, node):
        ind, values = need_input(node, 0), need_input(node, 2)
        r = len(ind.shape) + 1
        axis = norm_axis(node, node.attr("axis", -1), r)
        shape = list(ind.shape)
        shape.insert(axis, self._depth(node))
        return [(values.dtype, tuple(shape))]

    def reference(self, node, inputs):
        ind, values = inputs[0], inputs[2]
        depth = self._depth(node)
        axis = norm_axis(node, node.attr("axis", -1), ind.ndim + 1)
        idx = np.asarray(ind).astype(np.int64)
        idx = np.where(idx < 0, idx + depth, idx)
        hot = np.arange(depth).reshape([-1 if a == axis else 1 for a in range(ind.ndim + 1)])
        return [np.where(np.expand_dims(idx, axis) == hot, values[1], values[0]).astype(values.dtype)]

    def lower(self, node):
        ind, values, y = node.inputs[0], node.inputs[2], node.outputs[0]
        depth, r = self._depth(node), len(y.shape)
        axis = norm_axis(node, node.attr("axis", -1), r)
        others = [k for k in range(r) if k != axis]
        index = flat([(f"o{k}", s) for k, s in zip(others, contiguous_strides(ind.shape))])
        lets = [f"int64_t h = (int64_t)in0[{index}];", f"h = h < 0 ? h + {depth} : h;"]
        return [indexed_kernel(node, [ind, values], y, f"h == o{axis} ? in1[1] : in1[0]", lets)]


@register("GatherElements", since=[11, 13])
class GatherElements(OpDef):
    strings = True

    def infer(self, node):
        x, idx = need_input(node, 0), need_input(node, 1)
        if len(idx.shape) != len(x.shape):
            raise ShapeError(f"GatherElements {node.name!r}: indices and data ranks differ")
        norm_axis(node, node.attr("axis", 0), len(x.shape))
        return [(x.dtype, idx.shape)]

    def reference(self, node, inputs):
        x, idx = inputs
        axis = norm_axis(node, node.attr("axis", 0), x.ndim)
        idx = np.where(idx < 0, idx + x.shape[axis], idx)
        return [np.take_along_axis(x, idx.astype(np.int64), axis=axis)]

    def lower(self, node):
        x, idx, y = node.inputs[0], node.inputs[1], node.outputs[0]
        axis = norm_axis(node, node.attr("axis", 0), len(x.shape))
        at = flat([(f"o{k}", s) for k, s in enumerate(contiguous_strides(idx.shape))])
        lets = [f"const int64_t g = {safe_index(f'(int64_t)in1[{at}]', x.shape[axis])};"]
        index = flat([("g" if k == axis else f"o{k}", s) for k, s in enumerate(contiguous_strides(x.shape))])
        return [indexed_kernel(node, [x, idx], y, f"in0[{index}]", lets)]


@register("GatherND", since=[11, 12, 13])
class GatherND(OpDef):
    strings = True

    def _split(self, node: Node):
        x, idx = need_input(node, 0), need_input(node, 1)
        b = int(node.attr("batch_dims", 0))
        q = idx.shape[-1] if idx.shape else 0
        if not idx.shape or b < 0 or b + q > len(x.shape) or tuple(idx.shape[:b]) != tuple(x.shape[:b]):
            raise ShapeError(f"GatherND {node.name!r}: indices {list(idx.shape)} do not fit data {list(x.shape)}")
        return x, idx, b, q

    def infer(self, node):
        x, idx, b, q = self._split(node)
        return [(x.dtype, tuple(idx.shape[:-1]) + tuple(x.shape[b + q :]))]

    def reference(self, node, inputs):
        x, idx = inputs
        _, _, b, q = self._split(node)
        batch = math.prod(x.shape[:b])
        xs = x.reshape((batch,) + x.shape[b:])
        ids = idx.reshape((batch, -1, q)).astype(np.int64)
        out = []
        for i in range(batch):
            for row in ids[i]:
                key = tuple(int(v) + (x.shape[b + k] if v < 0 else 0) for k, v in enumerate(row))
                out.append(xs[i][key])
        return [np.asarray(out, dtype=x.dtype).reshape(node.outputs[0].shape)]

    def lower(self, node):
        x, idx, b, q = self._split(node)
        y = node.outputs[0]
        lead = len(idx.shape) - 1  # output axes 0..lead-1 walk the index tuples
        idx_strides, x_strides = contiguous_strides(idx.shape), contiguous_strides(x.shape)
        row = flat([(f"o{k}", s) for k, s in enumerate(idx_strides[:lead])])
        lets, terms = [], [(f"o{k}", x_strides[k]) for k in range(b)]
        for k in range(q):
            lets.append(f"const int64_t g{k} = {safe_index(f'(int64_t)in1[{row} + {k}]', x.shape[b + k])};")
            terms.append((f"g{k}", x_strides[b + k]))
        terms += [(f"o{lead + k}", x_strides[b + q + k]) for k in range(len(x.shape) - b - q)]
        return [indexed_kernel(node, [x, idx], y, f"in0[{flat(terms)}]", lets)]


@register("Range", since=[11])
class Range(OpDef):
    """start, start + delta, ... up to (not including) limit; the three scalars are compile-time values."""

    def _args(self, node: Node):
        vals = [const_input(node, i, what) for i, what in enumerate(("start", "limit", "delta"))]
        if any(v is None for v in vals):
            raise ModelError(f"Range {node.name!r}: needs start, limit and delta")
        start, limit, delta = (np.asarray(v).reshape(-1)[0] for v in vals)
        if delta == 0:
            raise ModelError(f"Range {node.name!r}: delta is 0")
        count = max(int(np.ceil((limit - start) / delta)), 0)
        return start, delta, count

    def infer(self, node):
        start, _, count = self._args(node)
        return [(need_input(node, 0).dtype, (count,))]

    def reference(self, node, inputs):
        start, delta, count = self._args(node)
        dtype = inputs[0].dtype
        return [(start + np.arange(count, dtype=np.float64 if dtype.kind == "f" else np.int64) * delta).astype(dtype)]

    def lower(self, node):
        start, delta, _ = self._args(node)
        y = node.outputs[0]
        expr = f"{c_literal(start.item(), y.dtype)} + o0 * {c_literal(delta.item(), y.dtype)}"
        return [indexed_kernel(node, [], y, expr)]
