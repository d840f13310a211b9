"""Ops that move or view data without arithmetic: Reshape, Flatten, (Un)Squeeze, Transpose, Concat,
Split, Slice, Gather, Expand, and the compile-time ones Shape, Size, Constant, ConstantOfShape."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import INT64, from_numpy
from ..ir.graph import Node
from .common import (
    broadcast_shapes,
    broadcast_strides,
    c_literal,
    const_input,
    contiguous_strides,
    copy_kernel,
    loop_kernel,
    need_input,
    norm_axis,
    require_c,
)
from .registry import Kernel, OpDef, register


class Relayout(OpDef):
    """Ops whose output is the input's elements in the same order under a new shape."""

    strings = True

    def out_shape(self, node: Node) -> tuple[int, ...]:
        raise NotImplementedError

    def infer(self, node):
        return [(need_input(node, 0).dtype, self.out_shape(node))]

    def reference(self, node, inputs):
        return [inputs[0].reshape(self.out_shape(node))]

    def lower(self, node):
        require_c(node, node.inputs[0])
        return [copy_kernel(node.op.lower(), node.inputs[0], node.outputs[0])]


@register("Reshape", since=[5, 13, 14, 19, 21])
class Reshape(Relayout):
    def out_shape(self, node):
        x = need_input(node, 0)
        shape = [int(d) for d in const_input(node, 1, "shape").reshape(-1)]
        allowzero = node.attr("allowzero", 0)
        out = [x.shape[i] if d == 0 and not allowzero and i < x.rank else d for i, d in enumerate(shape)]
        if out.count(-1) > 1 or any(d < -1 for d in out):
            raise ShapeError(f"Reshape {node.name!r}: invalid target shape {shape}")
        if -1 in out:
            known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
            if known == 0 or x.size % known:
                raise ShapeError(f"Reshape {node.name!r}: cannot reshape {list(x.shape)} to {shape}")
            out[out.index(-1)] = x.size // known
        if int(np.prod(out, dtype=np.int64)) != x.size:
            raise ShapeError(f"Reshape {node.name!r}: cannot reshape {list(x.shape)} to {shape}")
        return tuple(out)


@register("Flatten", since=[1, 9, 11, 13, 21])
class Flatten(Relayout):
    def out_shape(self, node):
        x = need_input(node, 0)
        axis = node.attr("axis", 1)
        axis = axis + x.rank if axis < 0 else axis
        if not 0 <= axis <= x.rank:
            raise ModelError(f"Flatten {node.name!r}: axis {node.attr('axis')} out of range for rank {x.rank}")
        return (int(np.prod(x.shape[:axis], dtype=np.int64)), int(np.prod(x.shape[axis:], dtype=np.int64)))


def _axes(node: Node, rank: int, input_index: int = 1) -> list[int] | None:
    if node.version >= 13:
        data = const_input(node, input_index, "axes")
        axes = None if data is None else [int(a) for a in data.reshape(-1)]
    else:
        axes = node.attr("axes")
    if axes is None:
        return None
    normed = [norm_axis(node, a, rank) for a in axes]
    if len(set(normed)) != len(normed):
        raise ModelError(f"{node.op} {node.name!r}: repeated axes {axes}")
    return sorted(normed)


@register("Squeeze", since=[1, 11, 13, 21])
class Squeeze(Relayout):
    def out_shape(self, node):
        x = need_input(node, 0)
        axes = _axes(node, x.rank)
        if axes is None:
            axes = [i for i, d in enumerate(x.shape) if d == 1]
        for a in axes:
            if x.shape[a] != 1:
                raise ShapeError(f"Squeeze {node.name!r}: axis {a} of {list(x.shape)} is not 1")
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)


@register("Unsqueeze", since=[1, 11, 13, 21])
class Unsqueeze(Relayout):
    def out_shape(self, node):
        x = need_input(node, 0)
        raw = node.attr("axes") if node.version < 13 else const_input(node, 1, "axes")
        if raw is None:
            raise ModelError(f"Unsqueeze {node.name!r}: axes are required")
        rank = x.rank + len(list(np.reshape(raw, -1)))
        axes = sorted(norm_axis(node, int(a), rank) for a in np.reshape(raw, -1))
        if len(set(axes)) != len(axes):
            raise ModelError(f"Unsqueeze {node.name!r}: repeated axes")
        dims = iter(x.shape)
        return tuple(1 if i in axes else next(dims) for i in range(rank))


@register("Transpose", since=[1, 13, 21])
class Transpose(OpDef):
    strings = True

    def _perm(self, node: Node) -> list[int]:
        x = need_input(node, 0)
        perm = node.attr("perm", list(range(x.rank))[::-1])
        if sorted(perm) != list(range(x.rank)):
            raise ModelError(f"Transpose {node.name!r}: perm {perm} is not a permutation of rank {x.rank}")
        return perm

    def infer(self, node):
        x = need_input(node, 0)
        return [(x.dtype, tuple(x.shape[p] for p in self._perm(node)))]

    def reference(self, node, inputs):
        return [np.transpose(inputs[0], self._perm(node))]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        own = contiguous_strides(x.shape)
        strides = [own[p] for p in self._perm(node)]
        return [loop_kernel("transpose", [x], y, "v0", y.shape, [strides])]


@register("Concat", since=[4, 11, 13])
class Concat(OpDef):
    strings = True

    def infer(self, node):
        values = [v for v in node.inputs if v is not None]
        if not values:
            raise ModelError(f"Concat {node.name!r}: no inputs")
        rank = values[0].rank
        axis = norm_axis(node, node.attr("axis", 0 if node.version < 4 else None) or 0, rank)
        for v in values:
            if (
                v.rank != rank
                or v.dtype != values[0].dtype
                or any(a != b for i, (a, b) in enumerate(zip(v.shape, values[0].shape)) if i != axis)
            ):
                raise ShapeError(
                    f"Concat {node.name!r}: inputs {[list(v.shape) for v in values]} do not concatenate on axis {axis}"
                )
        shape = list(values[0].shape)
        shape[axis] = sum(v.shape[axis] for v in values)
        return [(values[0].dtype, tuple(shape))]

    def reference(self, node, inputs):
        values = [x for x in inputs if x is not None]
        return [np.concatenate(values, axis=node.attr("axis", 0))]

    def lower(self, node):
        y = node.outputs[0]
        require_c(node, y)
        axis = norm_axis(node, node.attr("axis", 0), y.rank)
        out_strides = contiguous_strides(y.shape)
        kernels, start = [], 0
        for v in node.inputs:
            if v is None:
                continue
            if v.size:
                kernels.append(
                    loop_kernel(
                        "concat",
                        [v],
                        y,
                        "v0",
                        v.shape,
                        [contiguous_strides(v.shape)],
                        out_strides=out_strides,
                        out_offset=start * out_strides[axis],
                    )
                )
            start += v.shape[axis]
        return kernels


@register("Split", since=[2, 11, 13, 18])
class Split(OpDef):
    strings = True

    def _sizes(self, node: Node) -> tuple[int, list[int]]:
        x = need_input(node, 0)
        axis = norm_axis(node, node.attr("axis", 0), x.rank)
        n_out = len(node.outputs) or node.attr("num_outputs", 0)
        split = node.attr("split") if node.version < 13 else const_input(node, 1, "split")
        if split is not None:
            sizes = [int(s) for s in np.reshape(split, -1)]
        elif node.version >= 18 and node.attr("num_outputs") is not None:
            n = node.attr("num_outputs")
            chunk = -(-x.shape[axis] // n)
            sizes = [min(chunk, max(x.shape[axis] - chunk * i, 0)) for i in range(n)]
        else:
            if x.shape[axis] % n_out:
                raise ShapeError(f"Split {node.name!r}: dim {x.shape[axis]} does not split evenly into {n_out}")
            sizes = [x.shape[axis] // n_out] * n_out
        if sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
            raise ShapeError(f"Split {node.name!r}: sizes {sizes} do not add up to dim {x.shape[axis]}")
        return axis, sizes

    def infer(self, node):
        x = need_input(node, 0)
        axis, sizes = self._sizes(node)
        return [(x.dtype, x.shape[:axis] + (s,) + x.shape[axis + 1 :]) for s in sizes]

    def reference(self, node, inputs):
        axis, sizes = self._sizes(node)
        return np.split(inputs[0], np.cumsum(sizes)[:-1], axis=axis)

    def lower(self, node):
        x = node.inputs[0]
        require_c(node, x)
        axis, sizes = self._sizes(node)
        in_strides = contiguous_strides(x.shape)
        kernels, start = [], 0
        for out, size in zip(node.outputs, sizes):
            if out.size:
                kernels.append(
                    loop_kernel("split", [x], out, "v0", out.shape, [in_strides], in_offsets=[start * in_strides[axis]])
                )
            start += size
        return kernels


@register("Slice", since=[1, 10, 11, 13])
class Slice(OpDef):
    strings = True

    def _ranges(self, node: Node) -> list[tuple[int, int, int]]:
        """(start, step, length) per axis of the input."""
        x = need_input(node, 0)
        if node.version < 10:
            starts, ends = node.attr("starts"), node.attr("ends")
            axes, steps = node.attr("axes"), None
        else:
            starts = list(const_input(node, 1, "starts").reshape(-1))
            ends = list(const_input(node, 2, "ends").reshape(-1))
            axes_data, steps_data = const_input(node, 3, "axes"), const_input(node, 4, "steps")
            axes = None if axes_data is None else list(axes_data.reshape(-1))
            steps = None if steps_data is None else list(steps_data.reshape(-1))
        axes = list(range(len(starts))) if axes is None else [norm_axis(node, int(a), x.rank) for a in axes]
        steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
        if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
            raise ModelError(f"Slice {node.name!r}: starts, ends, axes and steps disagree")
        ranges = [(0, 1, d) for d in x.shape]
        for start, end, axis, step in zip(starts, ends, axes, steps):
            if step == 0:
                raise ModelError(f"Slice {node.name!r}: step 0")
            ranges[axis] = _slice_range(int(start), int(end), step, x.shape[axis])
        return ranges

    def infer(self, node):
        return [(need_input(node, 0).dtype, tuple(r[2] for r in self._ranges(node)))]

    def reference(self, node, inputs):
        index = []
        for start, step, count in self._ranges(node):
            stop = start + step * count
            index.append(slice(start, None if stop < 0 else stop, step) if count else slice(0, 0))
        return [inputs[0][tuple(index)]]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        own = contiguous_strides(x.shape)
        ranges = self._ranges(node)
        offset = sum(s * o for (s, _, _), o in zip(ranges, own))
        strides = [st * o for (_, st, _), o in zip(ranges, own)]
        return [loop_kernel("slice", [x], y, "v0", y.shape, [strides], in_offsets=[offset])]


def _slice_range(start: int, end: int, step: int, dim: int) -> tuple[int, int, int]:
    """numpy/ONNX clamping of one axis' slice: (first index, step, count)."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        count = max(0, -(-(end - start) // step))
    else:
        start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
        count = max(0, -(-(start - end) // -step))
    return (start if count else 0), step, count


@register("Gather", since=[1, 11, 13])
class Gather(OpDef):
    strings = True

    def infer(self, node):
        data, indices = need_input(node, 0), need_input(node, 1)
        if indices.dtype.kind != "int":
            raise ModelError(f"Gather {node.name!r}: indices must be int32 or int64, got {indices.dtype}")
        axis = norm_axis(node, node.attr("axis", 0), data.rank)
        return [(data.dtype, data.shape[:axis] + indices.shape + data.shape[axis + 1 :])]

    def reference(self, node, inputs):
        data, indices = inputs
        axis = norm_axis(node, node.attr("axis", 0), data.ndim)
        if indices.size and (indices.min() < -data.shape[axis] or indices.max() >= data.shape[axis]):
            raise ModelError(f"Gather {node.name!r}: index out of range for dim {data.shape[axis]}")
        return [np.take(data, indices.astype(np.int64), axis=axis)]

    def lower(self, node):
        data, indices, y = node.inputs[0], node.inputs[1], node.outputs[0]
        require_c(node, data, indices)
        axis = norm_axis(node, node.attr("axis", 0), data.rank)
        params = {
            "outer": int(np.prod(data.shape[:axis], dtype=np.int64)),
            "axis_dim": data.shape[axis],
            "count": indices.size,
            "inner": int(np.prod(data.shape[axis + 1 :], dtype=np.int64)),
            "ctype": data.dtype.c,
            "index_ctype": indices.dtype.c,
        }
        return [Kernel("gather", "gather", [data, indices], [y], params, ["data", "indices", "output"])]


@register("Expand", since=[8, 13])
class Expand(OpDef):
    strings = True

    def infer(self, node):
        x = need_input(node, 0)
        shape = [int(d) for d in const_input(node, 1, "shape").reshape(-1)]
        return [(x.dtype, broadcast_shapes(node, x.shape, shape))]

    def reference(self, node, inputs):
        return [np.broadcast_to(inputs[0], self.infer(node)[0][1]).copy()]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        return [loop_kernel("expand", [x], y, "v0", y.shape, [broadcast_strides(x.shape, y.shape)])]


class CompileTime(OpDef):
    """Ops whose value is always known at compile time; the fold pass removes them before codegen."""

    strings = True

    def lower(self, node):
        raise UnsupportedError(f"{node.op} {node.name!r}: its value must be computable at compile time")


@register("Shape", since=[1, 13, 15, 19, 21])
class Shape(CompileTime):
    shape_only = True

    def _dims(self, node: Node) -> list[int]:
        shape = list(need_input(node, 0).shape)
        rank = len(shape)
        start, end = node.attr("start", 0), node.attr("end", rank)
        start = min(max(start + rank if start < 0 else start, 0), rank)
        end = min(max(end + rank if end < 0 else end, 0), rank)
        return shape[start:end]

    def infer(self, node):
        return [(INT64, (len(self._dims(node)),))]

    def reference(self, node, inputs):
        return [np.array(self._dims(node), dtype=np.int64)]


@register("Size", since=[1, 13, 19, 21])
class Size(CompileTime):
    shape_only = True

    def infer(self, node):
        return [(INT64, ())]

    def reference(self, node, inputs):
        return [np.array(need_input(node, 0).size, dtype=np.int64)]


@register("Constant", since=[1, 9, 11, 12, 13, 19, 21])
class Constant(CompileTime):
    def _value(self, node: Node) -> np.ndarray:
        attrs = node.attrs
        if "value" in attrs:
            return np.asarray(attrs["value"])
        if "value_float" in attrs:
            return np.array(attrs["value_float"], dtype=np.float32)
        if "value_floats" in attrs:
            return np.array(attrs["value_floats"], dtype=np.float32)
        if "value_int" in attrs:
            return np.array(attrs["value_int"], dtype=np.int64)
        if "value_ints" in attrs:
            return np.array(attrs["value_ints"], dtype=np.int64)
        raise UnsupportedError(f"Constant {node.name!r}: only tensor, float(s) and int(s) values are supported")

    def infer(self, node):
        value = self._value(node)
        try:
            dtype = from_numpy(value.dtype)
        except KeyError:
            raise UnsupportedError(f"Constant {node.name!r}: element type {value.dtype} is not supported") from None
        return [(dtype, value.shape)]

    def reference(self, node, inputs):
        return [self._value(node)]


@register("ConstantOfShape", since=[9, 20, 21])
class ConstantOfShape(OpDef):
    def _fill(self, node: Node) -> np.ndarray:
        value = node.attr("value")
        return np.zeros(1, dtype=np.float32) if value is None else np.asarray(value).reshape(-1)[:1]

    def infer(self, node):
        shape = tuple(int(d) for d in const_input(node, 0, "shape").reshape(-1))
        if any(d < 0 for d in shape):
            raise ShapeError(f"ConstantOfShape {node.name!r}: negative dim in {list(shape)}")
        fill = self._fill(node)
        return [(from_numpy(fill.dtype), shape)]

    def reference(self, node, inputs):
        dtype, shape = self.infer(node)[0]
        return [np.full(shape, self._fill(node)[0], dtype=dtype.np)]

    def lower(self, node):
        y = node.outputs[0]
        require_c(node, y)
        value = self._fill(node)[0]
        return [loop_kernel("fill", [], y, c_literal(value.item(), y.dtype), y.shape, [])]
