"""Scatters: ScatterElements, ScatterND, the deprecated Scatter and TensorScatter, on the "scatter" kernel family.

Each op is two kernels: an elementwise copy of the data into the output, then the update pass, ordered by the
kernel (stream) order. The update pass views the updates as [outer, steps, inner] and writes update
(o, s, i) to output[dst], optionally combined with the value already there (reduction add, mul, max, min).
Indices are wrapped once when negative; an update whose index is still out of range is skipped, so it never
writes outside the output.

Two updates can only hit the same output element when they share (o, i): ScatterElements indexes along the
axis only, ScatterND and TensorScatter pick whole slices. The C kernel runs every update in order. The CUDA
kernel runs one thread per update when there is no reduction (ONNX leaves duplicate indices undefined then),
and with a reduction one thread per (o, i) that applies its updates in order: correct for every element
type and bit-for-bit the C result, at the cost of running on a single thread when (o, i) has one value
(1-D ScatterElements, ScatterND with indices that address single elements).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ModelError, ShapeError
from ..ir.dtypes import INT32, INT64, DType
from ..ir.graph import Node, Value
from .common import contiguous_strides, copy_kernel, need_input, norm_axis, require_c
from .registry import Kernel, OpDef, register

UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def spread(var: str, dims: Sequence[int], strides: Sequence[int]) -> list[str]:
    """C terms placing the row-major flat index `var` over `dims` at `strides` of another tensor."""
    merged: list[list[int]] = []  # [extent, stride], adjacent axes walked as one merged
    for d, s in zip(dims, strides):
        if d == 1:
            continue
        if merged and merged[-1][1] == s * d:
            merged[-1] = [merged[-1][0] * d, s]
        else:
            merged.append([d, s])
    terms, below = [], 1
    for k in range(len(merged) - 1, -1, -1):
        d, s = merged[k]
        part = var if below == 1 else f"{var} / {below}"
        if k:
            part = f"{part} % {d}"
        terms.append(scaled(part if part == var else f"({part})", s))
        below *= d
    return terms[::-1]


def joined(terms: Sequence[str]) -> str:
    return " + ".join(terms) or "0"


def scaled(var: str, stride: int) -> str:
    return var if stride == 1 else f"{var} * {stride}"


def update_offset(outer: int, steps: int, inner: int) -> str:
    """The flat offset of update (o, s, i) in contiguous [outer, steps, inner] updates (extent-1 axes left out)."""
    terms = [
        (var, stride)
        for var, extent, stride in (("o", outer, steps * inner), ("s", steps, inner), ("i", inner, 1))
        if extent > 1
    ]
    return joined([scaled(var, stride) for var, stride in terms])


def wrap_index(name: str, raw: str, extent: int) -> tuple[list[str], list[str]]:
    """Statements reading index `raw` into `name`, wrapped once if negative, and the C tests that it is in range."""
    lets = [f"int64_t {name} = (int64_t){raw};", f"if ({name} < 0) {name} += {extent};"]
    return lets, [f"{name} >= 0", f"{name} < {extent}"]


def combine_expr(reduction: str, dtype: DType) -> str:
    """C expression merging the output's `cur` with the update `upd` (integers wrap as numpy's do)."""
    if reduction in ("add", "mul"):
        op = "+" if reduction == "add" else "*"
        return f"cur {op} upd" if dtype.is_float else f"(uint64_t)cur {op} (uint64_t)upd"
    cmp = ">" if reduction == "max" else "<"
    nan = " || cur != cur" if dtype.is_float else ""  # a NaN on either side wins, as numpy's maximum/minimum
    return f"cur {cmp} upd{nan} ? cur : upd"


def scatter_kernel(
    node: Node,
    indices: Value | None,
    updates: Value,
    y: Value,
    extents: tuple[int, int, int],
    dst: Sequence[str],
    row: tuple[list[str], list[str]] = ([], []),
    elem: tuple[list[str], list[str]] = ([], []),
    reduction: str = "none",
) -> Kernel:
    """The update pass over updates viewed as `extents` = [outer, steps, inner]: update (o, s, i) goes to
    output[sum of `dst`], skipped unless the conditions of `row` (per (o, s)) and `elem` (per update) hold;
    each of `row` and `elem` is (statements, conditions)."""
    outer, steps, inner = extents
    inputs = [v for v in (indices, updates) if v is not None]
    names = (["indices"] if indices is not None else []) + ["updates", "output"]
    params = {
        "outer": outer,
        "steps": steps,
        "inner": inner,
        "row_lets": row[0],
        "row_ok": " && ".join(row[1]),
        "elem_lets": elem[0],
        "elem_ok": " && ".join(elem[1]),
        "src": update_offset(outer, steps, inner),
        "dst": joined(dst),
        "combine": "" if reduction == "none" else combine_expr(reduction, y.dtype),
        "ctype": y.dtype.c,
        # CUDA: one thread per update, or with a reduction one per (o, i) line
        "work_items": outer * inner if reduction != "none" else outer * steps * inner,
    }
    return Kernel("scatter", node.op.lower(), inputs, [y], params, names)


def lower_scatter(node: Node, data: Value, y: Value, update: Kernel | None) -> list[Kernel]:
    require_c(node, data, y)
    if not y.size:
        return []
    copy = copy_kernel(f"{node.op.lower()}_copy", data, y)
    return [copy] if update is None else [copy, update]


def check_types(node: Node, data: Value, indices: Value | None, updates: Value) -> None:
    if indices is not None and indices.dtype not in (INT32, INT64):
        raise ModelError(f"{node.op} {node.name!r}: indices must be int32 or int64, got {indices.dtype}")
    if updates.dtype != data.dtype:
        raise ModelError(f"{node.op} {node.name!r}: updates are {updates.dtype} but data is {data.dtype}")


def reduction_of(node: Node) -> str:
    """The reduction attribute, checked against what the node's opset allows."""
    r = node.attr("reduction", "none")
    r = r.decode() if isinstance(r, bytes) else r
    allowed = ["none"] + (["add", "mul"] if node.version >= 16 else []) + (["max", "min"] if node.version >= 18 else [])
    if r not in allowed:
        raise ModelError(f"{node.op} {node.name!r}: reduction {r!r} is not one of {allowed} at opset {node.version}")
    return r


def apply_updates(out: np.ndarray, where: tuple, values: np.ndarray, reduction: str) -> None:
    """out[where] (op)= values in order: the last duplicate wins without a reduction."""
    if reduction == "none":
        out[where] = values
    else:
        UFUNCS[reduction].at(out, where, values)


@register("ScatterElements", since=[11, 13, 16, 18])
class ScatterElements(OpDef):
    def _parts(self, node: Node) -> tuple[Value, Value, Value, int]:
        data, indices, updates = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        check_types(node, data, indices, updates)
        axis = norm_axis(node, node.attr("axis", 0), data.rank)
        fits = all(u <= d for k, (u, d) in enumerate(zip(indices.shape, data.shape)) if k != axis)
        if indices.shape != updates.shape or indices.rank != data.rank or not fits:
            raise ShapeError(
                f"{node.op} {node.name!r}: indices {list(indices.shape)} and updates {list(updates.shape)} "
                f"do not fit data {list(data.shape)} on axis {axis}"
            )
        return data, indices, updates, axis

    def _reduction(self, node: Node) -> str:
        return reduction_of(node)

    def infer(self, node):
        data = self._parts(node)[0]
        self._reduction(node)
        return [(data.dtype, data.shape)]

    def reference(self, node, inputs):
        data, indices, updates = inputs[:3]
        axis = self._parts(node)[3]
        at = np.asarray(indices).astype(np.int64)
        at = np.where(at < 0, at + data.shape[axis], at)
        keep = (at >= 0) & (at < data.shape[axis])
        where = list(np.indices(at.shape))
        where[axis] = at
        out = np.array(data, copy=True)
        apply_updates(out, tuple(w[keep] for w in where), np.asarray(updates)[keep], self._reduction(node))
        return [out]

    def lower(self, node):
        data, indices, updates, axis = self._parts(node)
        y = node.outputs[0]
        require_c(node, indices, updates)
        u, strides = updates.shape, contiguous_strides(data.shape)
        extents = (math.prod(u[:axis]), u[axis], math.prod(u[axis + 1 :]))
        lets, ok = wrap_index("j", f"indices[{update_offset(*extents)}]", data.shape[axis])
        dst = [
            *spread("o", u[:axis], strides[:axis]),
            scaled("j", strides[axis]),
            *spread("i", u[axis + 1 :], strides[axis + 1 :]),
        ]
        update = None
        if updates.size:
            update = scatter_kernel(
                node, indices, updates, y, extents, dst, elem=(lets, ok), reduction=self._reduction(node)
            )
        return lower_scatter(node, data, y, update)


@register("Scatter", since=[9])
class Scatter(ScatterElements):
    """Scatter (deprecated at opset 11): ScatterElements without a reduction."""

    def _reduction(self, node: Node) -> str:
        return "none"


@register("ScatterND", since=[11, 13, 16, 18])
class ScatterND(OpDef):
    def _parts(self, node: Node) -> tuple[Value, Value, Value, int]:
        data, indices, updates = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        check_types(node, data, indices, updates)
        q = indices.shape[-1] if indices.shape else -1
        if not 0 <= q <= data.rank or updates.shape != indices.shape[:-1] + data.shape[q:]:
            raise ShapeError(
                f"ScatterND {node.name!r}: indices {list(indices.shape)} and updates {list(updates.shape)} "
                f"do not fit data {list(data.shape)}"
            )
        return data, indices, updates, q

    def infer(self, node):
        data = self._parts(node)[0]
        reduction_of(node)
        return [(data.dtype, data.shape)]

    def reference(self, node, inputs):
        data, indices, updates = inputs[:3]
        q = self._parts(node)[3]
        head = np.asarray(data.shape[:q], dtype=np.int64)
        rows, inner = math.prod(indices.shape[:-1]), math.prod(data.shape[q:])
        at = np.asarray(indices).astype(np.int64).reshape(rows, q)
        at = np.where(at < 0, at + head, at)
        keep = np.all((at >= 0) & (at < head), axis=1)
        flat = np.ravel_multi_index(tuple(at[keep].T), data.shape[:q]) if q else np.zeros(int(keep.sum()), np.int64)
        out = np.array(data, copy=True)
        values = np.asarray(updates).reshape(rows, inner)[keep]
        apply_updates(out.reshape(math.prod(data.shape[:q]), inner), flat, values, reduction_of(node))
        return [out]

    def lower(self, node):
        data, indices, updates, q = self._parts(node)
        y = node.outputs[0]
        require_c(node, indices, updates)
        strides = contiguous_strides(data.shape)
        extents = (1, math.prod(indices.shape[:-1]), math.prod(data.shape[q:]))
        lets, ok, dst = [], [], []
        row = [scaled("s", q)] if extents[1] > 1 else []
        for k in range(q):
            more, tests = wrap_index(f"j{k}", f"indices[{joined(row + ([str(k)] if k else []))}]", data.shape[k])
            lets += more
            ok += tests
            dst.append(scaled(f"j{k}", strides[k]))
        dst += ["i"] if extents[2] > 1 else []
        update = None
        if updates.size:
            read = indices if q else None  # indices of shape [..., 0] address the whole data
            update = scatter_kernel(node, read, updates, y, extents, dst, row=(lets, ok), reduction=reduction_of(node))
        return lower_scatter(node, data, y, update)


@register("TensorScatter", since=[24])
class TensorScatter(OpDef):
    """The update of a cache along `axis`, row of batch b starting at write_indices[b] (0 without them);
    mode 'linear' skips positions past the end, 'circular' wraps them."""

    def _parts(self, node: Node) -> tuple[Value, Value, Value | None, int, bool]:
        past, update, writes = need_input(node, 0), need_input(node, 1), node.input(2)
        check_types(node, past, writes, update)
        axis = norm_axis(node, node.attr("axis", -2), past.rank)
        mode = node.attr("mode", "linear")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in ("linear", "circular"):
            raise ModelError(f"TensorScatter {node.name!r}: mode must be linear or circular, got {mode!r}")
        same = update.rank == past.rank and all(
            u == p for k, (u, p) in enumerate(zip(update.shape, past.shape)) if k != axis
        )
        if axis == 0 or not same or update.shape[axis] > past.shape[axis]:
            raise ShapeError(
                f"TensorScatter {node.name!r}: update {list(update.shape)} does not fit cache {list(past.shape)} "
                f"on axis {axis}"
            )
        if writes is not None and writes.shape != past.shape[:1]:
            raise ShapeError(f"TensorScatter {node.name!r}: write_indices must have shape [{past.shape[0]}]")
        return past, update, writes, axis, mode == "circular"

    def infer(self, node):
        past = self._parts(node)[0]
        return [(past.dtype, past.shape)]

    def reference(self, node, inputs):
        past, update = inputs[0], inputs[1]
        writes = inputs[2] if len(inputs) > 2 else None
        _, _, _, axis, circular = self._parts(node)
        out, size = np.array(past, copy=True), past.shape[axis]
        for prefix in np.ndindex(past.shape[:axis]):
            start = 0 if writes is None else int(writes[prefix[0]])
            for s in range(update.shape[axis]):
                at = (start + s) % size if circular else start + s
                if 0 <= at < size:
                    out[prefix + (at,)] = update[prefix + (s,)]
        return [out]

    def lower(self, node):
        past, update, writes, axis, circular = self._parts(node)
        y = node.outputs[0]
        require_c(node, update)
        size, per_batch = past.shape[axis], math.prod(past.shape[1:axis])
        outer, steps, inner = math.prod(past.shape[:axis]), update.shape[axis], math.prod(past.shape[axis + 1 :])
        batch = "0" if outer == 1 else "o" if per_batch == 1 else f"o / {per_batch}"
        start = [] if writes is None else [f"(int64_t)indices[{batch}]"]
        lets = [f"int64_t j = {joined(start + (['s'] if steps > 1 else []))};"]
        if circular:
            lets += [f"j %= {size};", f"if (j < 0) j += {size};"]
        dst = [scaled("o", size * inner)] if outer > 1 else []
        dst += [scaled("j", inner)] + (["i"] if inner > 1 else [])
        kernel = None
        if update.size:
            kernel = scatter_kernel(
                node, writes, update, y, (outer, steps, inner), dst, row=(lets, ["j >= 0", f"j < {size}"])
            )
        return lower_scatter(node, past, y, kernel)
