"""Ops whose output shape depends on the input data: NonZero, Compress, Unique and NonMaxSuppression.

Strategy: the compiler infers an upper bound for the data-dependent extent (every element non-zero, every
condition true, every slice distinct, every box kept) and stores the output with that bound; the kernel
writes the tensor it produced contiguously at the start of the buffer and reports the extent it reached
through an int64 slot of the model instance (Value.dynamic_axes; `PREFIX_output_shape` in model.h, and the
Python loader trims the array). Such a value may only be a graph output for now: an op that reads one is a
clear error at import. Where the data is known at compile time the op is folded and the shape is exact;
Compress with a constant condition has a static shape and no slot at all.

Unique and NonMaxSuppression sort with a stable bottom-up merge sort (O(n log n); merge_sort.j2) in arena
scratch the kernel gets as an extra output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import BOOL, INT64, DType
from ..ir.graph import Node, Value, axes_tuple
from .common import STORAGE_CONVERT, c_literal, const_input, need_input, norm_axis, require_c
from .registry import Kernel, OpDef, register


def scratch(node: Node, what: str, count: int) -> Value:
    """An int64 work buffer of `count` elements for one kernel (placed in the arena like any value)."""
    return Value(f"{node.name}:{what}", INT64, (max(count, 1),))


def tightened(values: Sequence[Value], natural: int) -> dict:
    """Kernel params for a bound --output-bound made tighter than `natural` (the most the data can give) along
    the values' data-dependent axis: the kernel checks it and fails the run rather than overflow."""
    extents = [v.shape[v.dynamic_axes[0]] for v in values if v.dynamic_axes]
    bound = min(extents, default=natural)
    return {"bound": bound, "checks_data": True} if bound < natural else {"bound": None}


def element(x: str, dtype: DType) -> str:
    """C text: element `x` as a value that compares like the ONNX element (half types widened)."""
    return f"{STORAGE_CONVERT[dtype.name][0]}({x})" if dtype.storage_only else x


@register("NonZero", since=[9, 13])
class NonZero(OpDef):
    def infer(self, node: Node):
        x = need_input(node, 0)
        return [(INT64, (max(x.rank, 1), x.size))]

    def dynamic_axes(self, node: Node) -> list[int | None]:
        return [1]

    def reference(self, node: Node, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        return [np.array(np.nonzero(np.atleast_1d(inputs[0])), dtype=np.int64)]

    def lower(self, node: Node) -> list[Kernel]:
        x, y = need_input(node, 0), node.outputs[0]
        require_c(node, x)
        params = {"n": x.size, "dims": list(x.shape) or [1], "is_nonzero": f"{element('X[i]', x.dtype)} != 0"}
        params.update(tightened([y], x.size))
        return [Kernel("nonzero", "nonzero", [x], [y], params, ["X", "Y"])]


@register("Compress", since=[9, 11])
class Compress(OpDef):
    def _layout(self, node: Node) -> tuple[int, int, int, int | None]:
        """(outer, extent, inner, axis) of the data viewed along the compressed axis (axis None: flattened)."""
        x, cond = need_input(node, 0), need_input(node, 1)
        if cond.rank != 1 or cond.dtype != BOOL:
            raise ModelError(
                f"Compress {node.name!r}: condition must be a 1-D bool tensor, got {cond.dtype}{list(cond.shape)}"
            )
        axis = node.attr("axis")
        if axis is None:
            outer, extent, inner = 1, x.size, 1
        else:
            axis = norm_axis(node, axis, x.rank)
            outer = int(np.prod(x.shape[:axis], dtype=np.int64))
            extent, inner = x.shape[axis], int(np.prod(x.shape[axis + 1 :], dtype=np.int64))
        if cond.size > extent:
            raise ShapeError(f"Compress {node.name!r}: condition has {cond.size} entries for an axis of {extent}")
        return outer, extent, inner, axis

    def _kept(self, node: Node) -> int | None:
        """The number of kept entries where the condition is a compile-time constant."""
        cond = node.inputs[1]
        return None if cond is None or cond.data is None else int(np.count_nonzero(cond.data))

    def infer(self, node: Node):
        x = need_input(node, 0)
        _, _, _, axis = self._layout(node)
        kept = self._kept(node)
        count = need_input(node, 1).size if kept is None else kept
        shape = (count,) if axis is None else x.shape[:axis] + (count,) + x.shape[axis + 1 :]
        return [(x.dtype, shape)]

    def dynamic_axes(self, node: Node) -> list[int | None]:
        if self._kept(node) is not None:
            return [None]
        axis = node.attr("axis")
        return [0 if axis is None else norm_axis(node, axis, need_input(node, 0).rank)]

    def reference(self, node: Node, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        return [np.compress(inputs[1], inputs[0], axis=node.attr("axis"))]

    def lower(self, node: Node) -> list[Kernel]:
        x, cond, y = need_input(node, 0), need_input(node, 1), node.outputs[0]
        require_c(node, x)
        outer, extent, inner, _ = self._layout(node)
        params = {
            "outer": outer,
            "extent": extent,
            "inner": inner,
            "length": cond.size,
            "dynamic": bool(y.dynamic_axes),
            **tightened([y], cond.size),
        }
        return [Kernel("compress", "compress", [x, cond], [y], params, ["X", "C", "Y"])]


@register("Unique", since=11)
class Unique(OpDef):
    def _layout(self, node: Node) -> tuple[int, int, int, int | None]:
        """(outer, n, inner, axis): the n slices compared, X viewed as [outer, n, inner]."""
        x = need_input(node, 0)
        axis = node.attr("axis")
        if axis is None:
            return 1, x.size, 1, None
        axis = norm_axis(node, axis, x.rank)
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        return outer, x.shape[axis], int(np.prod(x.shape[axis + 1 :], dtype=np.int64)), axis

    def infer(self, node: Node):
        x = need_input(node, 0)
        _, n, _, axis = self._layout(node)
        y = (n,) if axis is None else x.shape[:axis] + (n,) + x.shape[axis + 1 :]
        return [(x.dtype, y), (INT64, (n,)), (INT64, (n,)), (INT64, (n,))][: max(len(node.outputs), 1)]

    def dynamic_axes(self, node: Node) -> list[int | None]:
        axis = self._layout(node)[3]
        return [0 if axis is None else axis, 0, None, 0]

    def reference(self, node: Node, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        x, axis = inputs[0], node.attr("axis")
        flat = x.reshape(-1) if axis is None else x
        y, first, inverse, counts = np.unique(
            flat, return_index=True, return_inverse=True, return_counts=True, axis=None if axis is None else axis
        )
        inverse = inverse.reshape(-1)
        if not node.attr("sorted", 1):  # unique values in the order of their first occurrence
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            y = np.take(y, order, axis=0 if axis is None else axis)
            first, counts, inverse = first[order], counts[order], rank[inverse]
        results = [y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]
        return results[: len(node.outputs)]

    def lower(self, node: Node) -> list[Kernel]:
        x = need_input(node, 0)
        require_c(node, x)
        outer, n, inner, _ = self._layout(node)
        outs = list(node.outputs)
        full = [(x.dtype, outs[0].shape), (INT64, (n,)), (INT64, (n,)), (INT64, (n,))]
        for i in range(len(outs), 4):  # outputs the model does not ask for still need somewhere to go
            v = Value(f"{node.name}:unique{i}", *full[i])
            v.dynamic_axes = axes_tuple(self.dynamic_axes(node)[i])
            outs.append(v)
        work = scratch(node, "sort", 4 * n)
        params = {
            "outer": outer,
            "n": n,
            "inner": inner,
            "ctype": x.dtype.c,
            "load": STORAGE_CONVERT[x.dtype.name][0] if x.dtype.storage_only else "",
            "is_float": x.dtype.is_float,
            "sorted": bool(node.attr("sorted", 1)),
            **tightened(outs, n),
        }
        names = ["X", "Y", "Indices", "Inverse", "Counts", "Work"]
        return [Kernel("unique", "unique", [x], [*outs, work], params, names)]


@register("NonMaxSuppression", since=[10, 11])
class NonMaxSuppression(OpDef):
    def _sizes(self, node: Node) -> tuple[int, int, int]:
        boxes, scores = need_input(node, 0), need_input(node, 1)
        if boxes.rank != 3 or boxes.shape[2] != 4 or scores.rank != 3:
            raise ShapeError(
                f"NonMaxSuppression {node.name!r}: boxes must be [batch, boxes, 4] and scores [batch, classes, "
                f"boxes], got {list(boxes.shape)} and {list(scores.shape)}"
            )
        if scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
            raise ShapeError(
                f"NonMaxSuppression {node.name!r}: scores {list(scores.shape)} do not match boxes {list(boxes.shape)}"
            )
        return boxes.shape[0], scores.shape[1], boxes.shape[1]

    def _max_per_class(self, node: Node) -> int | None:
        """The compile-time max_output_boxes_per_class (0 where absent), or None where it is a run-time value."""
        v = node.input(2)
        if v is None:
            return 0
        if v.data is None:
            return None
        data = np.asarray(const_input(node, 2, "max_output_boxes_per_class")).reshape(-1)
        return max(int(data[0]), 0) if data.size else 0

    def infer(self, node: Node):
        batches, classes, boxes = self._sizes(node)
        limit = self._max_per_class(node)
        per_class = boxes if limit is None else min(boxes, limit)
        return [(INT64, (batches * classes * per_class, 3))]

    def dynamic_axes(self, node: Node) -> list[int | None]:
        return [0]

    def reference(self, node: Node, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        boxes, scores = inputs[0], inputs[1]
        limit = self._max_per_class(node) or 0
        iou = float(inputs[3].reshape(-1)[0]) if len(inputs) > 3 and inputs[3] is not None and inputs[3].size else 0.0
        has_score = len(inputs) > 4 and inputs[4] is not None and inputs[4].size > 0
        score_t = inputs[4].reshape(-1)[0] if has_score else 0
        center = node.attr("center_point_box", 0)
        selected = []
        for b in range(boxes.shape[0]):
            corners = _corners(boxes[b], center)
            for c in range(scores.shape[1]):
                s = scores[b, c]
                cand = [j for j in range(s.size) if not has_score or s[j] > score_t]
                cand.sort(key=lambda j: -s[j])
                kept: list[int] = []
                for j in cand:
                    if len(kept) >= limit:
                        break
                    if not any(_suppress(corners[k], corners[j], iou) for k in kept):
                        kept.append(j)
                selected += [(b, c, j) for j in kept]
        return [np.array(selected, dtype=np.int64).reshape(-1, 3)]

    def lower(self, node: Node) -> list[Kernel]:
        boxes, scores, y = need_input(node, 0), need_input(node, 1), node.outputs[0]
        if not boxes.dtype.is_float or boxes.dtype.storage_only or scores.dtype != boxes.dtype:
            raise UnsupportedError(f"NonMaxSuppression {node.name!r}: boxes and scores must both be float32 or float64")
        batches, classes, n = self._sizes(node)
        inputs, names = [boxes, scores], ["Boxes", "Scores"]
        params = {
            "ctype": boxes.dtype.c,
            "batches": batches,
            "classes": classes,
            "n": n,
            "center": bool(node.attr("center_point_box", 0)),
            "max_per_class": self._max_per_class(node),
            "has_iou": False,
            "has_score": False,
            "zero": c_literal(0, boxes.dtype),
            **tightened([y], self.infer(node)[0][1][0]),
        }
        for i, key, name in ((2, "max_per_class", "MaxOut"), (3, "has_iou", "Iou"), (4, "has_score", "ScoreMin")):
            v = node.input(i)
            if v is None or (v.data is not None and v.size == 0):
                continue
            if i > 2 and v.dtype != boxes.dtype:
                raise UnsupportedError(f"NonMaxSuppression {node.name!r}: thresholds must have the boxes' type")
            if i == 2 and params["max_per_class"] is not None:
                continue  # a compile-time limit is a literal
            inputs.append(v)
            names.append(name)
            if i > 2:
                params[key] = True
        names += ["Y", "Work"]
        return [Kernel("nms", "nms", inputs, [y, scratch(node, "sort", 2 * n)], params, names)]


def _corners(boxes: np.ndarray, center: int) -> np.ndarray:
    """[n, 4] boxes as (x_min, x_max, y_min, y_max) in their own type, as ONNX's reference computes them."""
    if center:
        half_w, half_h = boxes[:, 2] / 2, boxes[:, 3] / 2
        return np.stack([boxes[:, 0] - half_w, boxes[:, 0] + half_w, boxes[:, 1] - half_h, boxes[:, 1] + half_h], 1)
    xs, ys = np.sort(boxes[:, [1, 3]], axis=1), np.sort(boxes[:, [0, 2]], axis=1)
    return np.concatenate([xs, ys], axis=1)


def _suppress(a: np.ndarray, b: np.ndarray, iou: float) -> bool:
    ix = min(a[1], b[1]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[2], b[2])
    if ix <= 0 or iy <= 0:
        return False
    inter = ix * iy
    area_a, area_b = (a[1] - a[0]) * (a[3] - a[2]), (b[1] - b[0]) * (b[3] - b[2])
    union = area_a + area_b - inter
    if inter <= 0 or area_a <= 0 or area_b <= 0 or union <= 0:
        return False
    return bool(inter / union > iou)
