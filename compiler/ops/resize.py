"""Resize (opsets 10 to 19): nearest, linear and cubic interpolation over any axes, every coordinate
transformation mode, sizes or scales (with keep_aspect_ratio_policy), on the "indexed" kernel family.

Each resized axis maps its output coordinate to a source coordinate x (in double, as ONNX's reference does)
and takes 1, 2 or 4 taps around floor(x) with their weights; indices outside the input are clamped (edge
values), or for cubic with exclude_outside dropped and the weights renormalised. The output element is the
weighted sum over the taps of every resized axis (separable interpolation). antialias=1 (linear and cubic)
lowers through resize_antialias.py.
"""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64
from ..ir.graph import Node, Value
from .common import c_literal, const_input, contiguous_strides, need_input, norm_axis
from .indexed import indexed_kernel
from .registry import OpDef, register
from .resize_antialias import lower_antialias


def _s(node: Node, key: str, default: str) -> str:
    v = node.attr(key, default)
    return v.decode() if isinstance(v, bytes) else v


class _Plan:
    """Output shape, per-axis scale and roi of one Resize node."""

    def __init__(self, node: Node) -> None:
        x = need_input(node, 0)
        r = len(x.shape)
        if node.version < 11:
            scales, sizes, roi = const_input(node, 1, "scales"), None, None
            self.transform = "asymmetric"
        else:
            roi, scales, sizes = (const_input(node, i, w) for i, w in ((1, "roi"), (2, "scales"), (3, "sizes")))
            self.transform = _s(node, "coordinate_transformation_mode", "half_pixel")
        scales = None if scales is None or scales.size == 0 else [float(v) for v in np.asarray(scales, np.float32)]
        sizes = None if sizes is None or sizes.size == 0 else [int(v) for v in sizes.reshape(-1)]
        if (scales is None) == (sizes is None):
            raise ModelError(f"Resize {node.name!r}: exactly one of scales and sizes must be given")
        axes = [norm_axis(node, a, r) for a in (node.attr("axes") or range(r))]
        given = scales if scales is not None else sizes
        if len(given) != len(axes):
            raise ShapeError(f"Resize {node.name!r}: {len(given)} scales/sizes for {len(axes)} axes")
        self.scale, self.out = [1.0] * r, list(x.shape)
        if scales is not None:
            for a, s in zip(axes, scales):
                if s <= 0:
                    raise ShapeError(f"Resize {node.name!r}: scale {s} must be positive")
                self.scale[a], self.out[a] = s, int(np.float32(s) * np.float64(x.shape[a]))
        else:
            for a, n in zip(axes, sizes):
                self.out[a] = n
                self.scale[a] = n / x.shape[a] if x.shape[a] else 1.0
            policy = _s(node, "keep_aspect_ratio_policy", "stretch")
            if policy != "stretch":
                pick = min if policy == "not_larger" else max
                s = pick(self.scale[a] for a in axes)
                for a in axes:
                    self.scale[a], self.out[a] = s, int(s * x.shape[a] + 0.5)
        self.roi = [(0.0, 1.0)] * r
        if roi is not None and roi.size:
            values = [float(v) for v in roi.reshape(-1)]
            for i, a in enumerate(axes):
                self.roi[a] = (values[i], values[i + len(axes)])
        self.axes = [
            a
            for a in range(r)
            if not (self.scale[a] == 1.0 and self.out[a] == x.shape[a] and self.transform != "tf_crop_and_resize")
        ]
        if any(d < 0 for d in self.out):
            raise ShapeError(f"Resize {node.name!r}: negative output size {self.out}")


def _source(transform: str, o: str, length: int, out: int, scale: float, roi: tuple[float, float]) -> str:
    """C expression of the source coordinate of output coordinate `o` along one axis."""
    s = repr(float(np.float32(scale)))
    ow = f"({s} * {length})"
    if transform == "align_corners":
        return f"({ow} == 1 ? 0.0 : (double){o} * {length - 1} / ({ow} - 1))"
    if transform == "asymmetric":
        return f"((double){o} / {s})"
    if transform == "pytorch_half_pixel":
        return f"({ow} == 1 ? -0.5 : ((double){o} + 0.5) / {s} - 0.5)"
    if transform == "half_pixel":
        return f"(((double){o} + 0.5) / {s} - 0.5)"
    if transform == "half_pixel_symmetric":
        return f"({length / 2!r} * (1 - {out} / {ow}) + ((double){o} + 0.5) / {s} - 0.5)"
    if transform == "tf_crop_and_resize":
        lo, hi = roi
        span = f"{hi - lo!r} * {length - 1}"
        return f"(({ow} == 1 ? {span} / 2 : (double){o} * {span} / ({ow} - 1)) + {lo!r} * {length - 1})"
    raise UnsupportedError(f"Resize: coordinate_transformation_mode {transform!r} is not supported")


TABLE_BYTES = 64 << 10  # the per-axis tap tables a kernel keeps on its stack


def _with_tables(k, per_element: list[str]):
    """Where the kernel fills tables before its loops, the statements that compute each element's taps
    without them (the cuda template: a thread per element, nothing shared to fill first)."""
    if k.params.get("pre"):
        k.params["per_element_lets"] = per_element
    return k


@register("Resize", since=[10, 11, 13, 18, 19])
class Resize(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        if _s(node, "mode", "nearest") not in ("nearest", "linear", "cubic"):
            raise ModelError(f"Resize {node.name!r}: unknown mode")
        return [(x.dtype, tuple(_Plan(node).out))]

    def reference(self, node, inputs):
        """onnx's own reference implementation, on a one-node model."""
        from onnx.reference import ReferenceEvaluator

        names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
        proto = helper.make_node("Resize", names, ["y"], **{k: v for k, v in node.attrs.items()})
        graph = helper.make_graph(
            [proto],
            "resize",
            [],
            [helper.make_empty_tensor_value_info("y")],
            [numpy_helper.from_array(np.asarray(v), n) for n, v in zip(names, inputs) if n],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", node.version)])
        return [np.asarray(ReferenceEvaluator(model).run(None, {})[0]).astype(inputs[0].dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        plan = _Plan(node)
        mode = _s(node, "mode", "nearest")
        if node.attr("antialias", 0) and mode != "nearest":
            return lower_antialias(node, plan, _source)
        nearest = _s(node, "nearest_mode", "round_prefer_floor")
        a_coef = float(node.attr("cubic_coeff_a", -0.75))
        exclude = bool(node.attr("exclude_outside", 0))
        strides = contiguous_strides(x.shape)
        lets, outside = [], []
        base = (
            " + ".join(f"o{k} * {strides[k]}" for k in range(len(x.shape)) if k not in plan.axes and strides[k]) or "0"
        )
        taps = {"nearest": 1, "linear": 2, "cubic": 4}[mode]
        # Each axis' taps and weights depend on its own output coordinate only: computed once per kernel
        # call into tables (on the stack, where small) rather than once per output element.
        tables = (
            plan.transform != "tf_crop_and_resize" and sum(plan.out[a] for a in plan.axes) * taps * 16 <= TABLE_BYTES
        )
        pre, per_element = [], []  # per_element: the lets without tables (targets with a thread per element)
        gather = mode == "nearest" and plan.transform != "tf_crop_and_resize"  # one tap of weight 1: no weights
        for a in plan.axes:
            start = len(lets)
            n = x.shape[a]
            if n == 0:
                raise ShapeError(f"Resize {node.name!r}: cannot interpolate an empty axis")
            src = _source(plan.transform, f"o{a}", n, plan.out[a], plan.scale[a], plan.roi[a])
            lets.append(f"const double x{a} = {src}, f{a} = floor(x{a}), r{a} = x{a} - f{a}; (void)r{a};")
            if plan.transform == "tf_crop_and_resize":
                outside.append(f"x{a} < 0 || x{a} > {n - 1}")
            lets.append(f"int64_t i{a}[{taps}];")
            if not gather:
                lets.append(f"double w{a}[{taps}];")
            if mode == "nearest":
                pick = {
                    "round_prefer_floor": f"r{a} <= 0.5",
                    "round_prefer_ceil": f"r{a} < 0.5",
                    "floor": "1",
                    "ceil": f"r{a} == 0",
                }.get(nearest)
                if pick is None:
                    raise ModelError(f"Resize {node.name!r}: unknown nearest_mode {nearest!r}")
                lets.append(f"i{a}[0] = (int64_t)f{a} + ({pick} ? 0 : 1);" + ("" if gather else f" w{a}[0] = 1;"))
            elif mode == "linear":
                lets.append(f"i{a}[0] = (int64_t)f{a}; i{a}[1] = i{a}[0] + 1; w{a}[0] = 1 - r{a}; w{a}[1] = r{a};")
            else:
                A = repr(a_coef)
                lets.append(
                    f"{{ const double t = r{a}, u = 1 - r{a};"
                    f" w{a}[0] = (({A} * (t + 1) - 5 * {A}) * (t + 1) + 8 * {A}) * (t + 1) - 4 * {A};"
                    f" w{a}[1] = (({A} + 2) * t - ({A} + 3)) * t * t + 1;"
                    f" w{a}[2] = (({A} + 2) * u - ({A} + 3)) * u * u + 1;"
                    f" w{a}[3] = (({A} * (u + 1) - 5 * {A}) * (u + 1) + 8 * {A}) * (u + 1) - 4 * {A};"
                    f" for (int t_ = 0; t_ < 4; ++t_) i{a}[t_] = (int64_t)f{a} - 1 + t_; }}"
                )
                if exclude:
                    lets.append(
                        f"{{ double sum = 0; for (int t_ = 0; t_ < 4; ++t_) {{ if (i{a}[t_] < 0 || i{a}[t_] >= {n}) w{a}[t_] = 0;"
                        f" sum += w{a}[t_]; }} if (sum != 0) for (int t_ = 0; t_ < 4; ++t_) w{a}[t_] /= sum; }}"
                    )
            lets.append(
                f"for (int t_ = 0; t_ < {taps}; ++t_) i{a}[t_] = i{a}[t_] < 0 ? 0 : (i{a}[t_] >= {n} ? {n - 1} : i{a}[t_]);"
            )
            per_element += lets[start:]
            if tables:  # the axis' statements move into a loop filling its tables
                body = [f"int64_t *i{a} = I{a}[o{a}];"] + ([] if gather else [f"double *w{a} = W{a}[o{a}];"])
                body += [t for t in lets[start:] if not t.startswith(("int64_t i", "double w"))]
                pre.append(f"int64_t I{a}[{plan.out[a]}][{taps}];")
                if not gather:
                    pre.append(f"double W{a}[{plan.out[a]}][{taps}];")
                pre.append(f"for (int64_t o{a} = 0; o{a} < {plan.out[a]}; ++o{a}) {{ {' '.join(body)} }}")
                lets[start:] = [f"const int64_t *i{a} = I{a}[o{a}];"]
                if not gather:
                    lets.append(f"const double *w{a} = W{a}[o{a}];")

        def index(tap: str) -> str:
            return " + ".join([base] + [f"i{a}[{tap or f't{a}'}] * {strides[a]}" for a in plan.axes])

        if gather:
            return [_with_tables(indexed_kernel(node, [x], y, f"in0[{index('0')}]", lets, pre), per_element)]
        loops = "".join(f"for (int t{a} = 0; t{a} < {taps}; ++t{a}) " for a in plan.axes)
        weight = " * ".join(f"w{a}[t{a}]" for a in plan.axes) or "1"
        total = ["double acc = 0;", f"{loops}acc += {weight} * (double)in0[{index('')}];"]
        lets += total
        per_element += total
        value = "acc"
        if not y.dtype.is_float:
            info = np.iinfo(y.dtype.np)
            value = f"(rint(acc) < {info.min} ? {info.min} : (rint(acc) > {info.max} ? {info.max} : rint(acc)))"
        if outside:
            extra = c_literal(float(node.attr("extrapolation_value", 0.0)), FLOAT64)
            value = f"({' || '.join(outside)}) ? {extra} : {value}"
        return [_with_tables(indexed_kernel(node, [x], y, value, lets, pre), per_element)]


@register("Upsample", since=[7, 9])
class Upsample(OpDef):
    """The deprecated Upsample: Resize with asymmetric coordinates and, for nearest, floor rounding (scales
    from the attribute before opset 9, from input 1 after)."""

    def _as_resize(self, node: Node) -> Node:
        x = need_input(node, 0)
        if node.version < 9:
            data = np.asarray(node.attr("scales") or [], np.float32)
            scales = Value("scales", FLOAT32, data.shape, data)
        else:
            scales = need_input(node, 1)
        mode = _s(node, "mode", "nearest")
        attrs = {"mode": "linear" if mode in ("linear", "bilinear") else mode}
        attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return Node("Resize", [x, None, scales], node.outputs, attrs, node.name, node.domain, 11)

    def infer(self, node):
        return Resize().infer(self._as_resize(node))

    def reference(self, node, inputs):
        shadow = self._as_resize(node)
        return Resize().reference(shadow, [inputs[0], None, shadow.inputs[2].data if node.version < 9 else inputs[1]])

    def lower(self, node):
        return Resize().lower(self._as_resize(node))
