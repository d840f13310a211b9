"""GridSample (2-D from opset 16, N-D from opset 20) and AffineGrid (opset 20) on the "indexed" kernel family.

GridSample reads, for output element (n, c, d1, ...), the normalised source coordinate from the grid (its last
axis lists the coordinates innermost spatial axis first), maps it onto the input axis (align_corners decides
whether -1 and 1 are the centres or the outer edges of the end elements), folds it back inside by the
padding mode (border clamps it, reflection mirrors it) and interpolates with 1 (nearest, ties to even), 2
(linear) or 4 (cubic, a = -0.75) taps per axis. Taps outside the input read zero (zeros), the edge element
(border) or their mirror image (reflection). Cubic pads its taps but not the coordinate, as onnxruntime and
PyTorch do (onnx's reference clamps the coordinate first, which differs near the border). Coordinates are
computed in the input's float type, as onnxruntime does.

AffineGrid is its usual producer: the grid of normalised coordinates of an output of `size`, each moved by
the batch entry's affine matrix theta. It has its own kernel because ONNX's function body for it branches
with If, which mlcc does not import.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64, DType
from ..ir.graph import Node
from .common import c_literal, cmath, const_input, contiguous_strides, need_input
from .indexed import flat, indexed_kernel
from .registry import OpDef, register

MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear", "cubic": "cubic", "bicubic": "cubic"}
PADDINGS = ("zeros", "border", "reflection")
CUBIC_A = -0.75
TAPS = {"nearest": 1, "linear": 2, "cubic": 4}


def _s(node: Node, key: str, default: str) -> str:
    v = node.attr(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _compute_type(dtype: DType) -> DType:
    return FLOAT64 if dtype == FLOAT64 else FLOAT32


def _reflect(v: str, lo: float, hi: float, ct: DType) -> str:
    """A C statement folding the `ct` variable `v` into [lo, hi] by mirroring it about the borders."""
    lit = lambda x: c_literal(x, ct)  # noqa: E731
    if hi == lo:
        return f"if ({v} < {lit(lo)} || {v} > {lit(hi)}) {v} = {lit(lo)};"
    floor, fmod, span = cmath("floor", ct), cmath("fmod", ct), lit(hi - lo)

    def fold(dist: str, near: str, far: str) -> str:
        return (
            f"{{ const {ct.c} d_ = {dist}, m_ = {floor}(d_ / {span}), e_ = d_ - m_ * {span};"
            f" {v} = {fmod}(m_, 2) == 0 ? {near} : {far}; }}"
        )

    below = fold(f"{lit(lo)} - {v}", f"{lit(lo)} + e_", f"{lit(hi)} - e_")
    above = fold(f"{v} - {lit(hi)}", f"{lit(hi)} - e_", f"{lit(lo)} + e_")
    return f"if ({v} < {lit(lo)}) {below} else if ({v} > {lit(hi)}) {above}"


def _index(p: str, n: int, padding: str, ct: DType) -> str:
    """C int64 index of the integral tap position `p` on an axis of `n`: -1 (reads zero) outside under zeros
    padding, else clamped into the axis (a NaN coordinate reads element 0, never memory outside)."""
    last = c_literal(float(n - 1), ct)
    if padding == "zeros":
        return f"({p} >= 0 && {p} <= {last} ? (int64_t){p} : -1)"
    return f"({p} >= 0 ? ({p} <= {last} ? (int64_t){p} : {n - 1}) : 0)"


def _reflect_np(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """numpy twin of _reflect."""
    outside = (v < lo) | (v > hi)
    if hi == lo:
        return np.where(outside, lo, v)
    d = np.where(v < lo, lo - v, v - hi)
    m = np.floor(d / (hi - lo))
    e = d - m * (hi - lo)
    even = np.fmod(m, 2) == 0
    return np.where(v < lo, np.where(even, lo + e, hi - e), np.where(v > hi, np.where(even, hi - e, lo + e), v))


def _cubic_weights(r):
    """The four cubic convolution weights (a = -0.75) of taps floor(x) - 1 ... floor(x) + 2, r = x - floor(x)."""
    a, u = CUBIC_A, 1 - r
    return [
        ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
        ((a + 2) * r - (a + 3)) * r * r + 1,
        ((a + 2) * u - (a + 3)) * u * u + 1,
        ((a * (u + 1) - 5 * a) * (u + 1) + 8 * a) * (u + 1) - 4 * a,
    ]


def _axis_lets(a: int, k: int, n: int, mode: str, padding: str, align: bool, ct: DType) -> list[str]:
    """C statements giving spatial axis `a` (of `n` elements) its tap indices i{a} (and weights w{a})."""
    lit = lambda v: c_literal(v, ct)  # noqa: E731
    lo, hi = (0.0, n - 1.0) if align else (-0.5, n - 0.5)
    x = f"x{a}"
    g = f"({ct.c})in1[g + {k - 1 - a}]"  # the grid lists the innermost axis's coordinate first
    if align:
        lets = [f"{ct.c} {x} = ({g} + {lit(1.0)}) / {lit(2.0)} * {lit(n - 1.0)};"]
    else:
        lets = [f"{ct.c} {x} = (({g} + {lit(1.0)}) * {lit(float(n))} - {lit(1.0)}) / {lit(2.0)};"]
    if mode == "nearest":
        lets.append(f"{x} = {cmath('rint', ct)}({x});")
    # Cubic pads its taps only (onnxruntime and PyTorch); the others fold the coordinate first.
    if padding == "border" and mode != "cubic":
        clamped = f"{x} < 0 ? 0 : ({x} > {lit(n - 1.0)} ? {lit(n - 1.0)} : {x})"
        lets.append(f"if ({x} < {lit(lo)} || {x} > {lit(hi)}) {x} = {clamped};")
    elif padding == "reflection" and mode != "cubic":
        lets.append(_reflect(x, lo, hi, ct))
    if mode == "nearest":
        return [*lets, f"const int64_t i{a} = {_index(x, n, padding, ct)};"]
    taps = TAPS[mode]
    first = "t" if mode == "linear" else "(t - 1)"
    fold = f" {_reflect('p', lo, hi, ct)}" if padding == "reflection" else ""
    lets += [
        f"const {ct.c} f{a} = {cmath('floor', ct)}({x}), r{a} = {x} - f{a};",
        f"int64_t i{a}[{taps}];",
        f"{ct.c} w{a}[{taps}];",
        f"for (int t = 0; t < {taps}; ++t) {{ {ct.c} p = f{a} + {first};{fold} i{a}[t] = {_index('p', n, padding, ct)}; }}",
    ]
    if mode == "linear":
        return [*lets, f"w{a}[0] = {lit(1.0)} - r{a}; w{a}[1] = r{a};"]
    A = CUBIC_A
    return [
        *lets,
        f"{{ const {ct.c} u = {lit(1.0)} - r{a}, s = r{a} + {lit(1.0)}, v = u + {lit(1.0)};",
        f"  w{a}[0] = (({lit(A)} * s - {lit(5 * A)}) * s + {lit(8 * A)}) * s - {lit(4 * A)};",
        f"  w{a}[1] = ({lit(A + 2)} * r{a} - {lit(A + 3)}) * r{a} * r{a} + {lit(1.0)};",
        f"  w{a}[2] = ({lit(A + 2)} * u - {lit(A + 3)}) * u * u + {lit(1.0)};",
        f"  w{a}[3] = (({lit(A)} * v - {lit(5 * A)}) * v + {lit(8 * A)}) * v - {lit(4 * A)}; }}",
    ]


@register("GridSample", since=[16, 20, 22])
class GridSample(OpDef):
    def _attrs(self, node: Node) -> tuple[str, str, bool]:
        mode = _s(node, "mode", "bilinear" if node.version < 20 else "linear")
        padding = _s(node, "padding_mode", "zeros")
        if mode not in MODES:
            raise ModelError(f"GridSample {node.name!r}: unknown mode {mode!r}")
        if padding not in PADDINGS:
            raise ModelError(f"GridSample {node.name!r}: unknown padding_mode {padding!r}")
        return MODES[mode], padding, bool(node.attr("align_corners", 0))

    def infer(self, node):
        x, grid = need_input(node, 0), need_input(node, 1)
        mode, _, _ = self._attrs(node)
        k = x.rank - 2
        if (node.version < 20 and x.rank != 4) or k < 1:
            raise ShapeError(f"GridSample {node.name!r}: X {list(x.shape)} must be 4-D (N-D from opset 20)")
        if grid.rank != k + 2 or grid.shape[0] != x.shape[0] or grid.shape[-1] != k:
            raise ShapeError(f"GridSample {node.name!r}: grid {list(grid.shape)} does not fit X {list(x.shape)}")
        if not grid.dtype.is_float or not (x.dtype.is_float or mode == "nearest"):
            raise UnsupportedError(
                f"GridSample {node.name!r}: {mode} interpolation of {x.dtype} with a {grid.dtype} grid is not supported"
            )
        return [(x.dtype, x.shape[:2] + grid.shape[1:-1])]

    def reference(self, node, inputs):
        x, grid = inputs
        mode, padding, align = self._attrs(node)
        k, ct = x.ndim - 2, _compute_type(need_input(node, 0).dtype).np
        lead = (x.shape[0], 1, *grid.shape[1:-1])  # index arrays broadcast over channels
        axes = []  # per spatial axis: (index, inside, weight) arrays with a leading tap axis
        for a in range(k):
            n = x.shape[2 + a]
            lo, hi = (0.0, n - 1.0) if align else (-0.5, n - 0.5)
            g = grid[..., k - 1 - a].astype(ct)
            pos = (g + 1) / 2 * (n - 1) if align else ((g + 1) * n - 1) / 2
            pos = np.rint(pos) if mode == "nearest" else pos
            if padding == "border" and mode != "cubic":
                pos = np.where((pos < lo) | (pos > hi), np.clip(pos, 0, n - 1), pos)
            elif padding == "reflection" and mode != "cubic":
                pos = _reflect_np(pos, lo, hi)
            if mode == "nearest":
                taps, weights = pos[None], np.ones((1, *pos.shape), ct)
            else:
                f = np.floor(pos)
                first = 0 if mode == "linear" else -1
                taps = np.stack([f + first + t for t in range(TAPS[mode])])
                weights = np.stack([1 - (pos - f), pos - f] if mode == "linear" else _cubic_weights(pos - f))
            if padding == "reflection":
                taps = _reflect_np(taps, lo, hi)
            inside = (taps >= 0) & (taps <= n - 1)
            index = np.clip(np.nan_to_num(taps), 0, n - 1).astype(np.int64)
            if padding != "zeros":
                inside = np.ones_like(inside)
            axes.append([v.reshape(-1, *lead) for v in (index, inside, weights.astype(ct))])
        batch = np.arange(x.shape[0]).reshape(-1, *[1] * (k + 1))
        channel = np.arange(x.shape[1]).reshape(1, -1, *[1] * k)
        if mode == "nearest":
            values = x[(batch, channel, *(index[0] for index, _, _ in axes))]
            inside = np.logical_and.reduce([ins[0] for _, ins, _ in axes])
            return [np.where(inside, values, 0).astype(x.dtype)]
        acc = np.zeros((*x.shape[:2], *grid.shape[1:-1]), ct)
        for tap in np.ndindex(*[TAPS[mode]] * k):
            weight = np.prod([w[t] for (_, _, w), t in zip(axes, tap)], axis=0)
            values = x[(batch, channel, *(index[t] for (index, _, _), t in zip(axes, tap)))].astype(ct)
            inside = np.logical_and.reduce([ins[t] for (_, ins, _), t in zip(axes, tap)])
            acc += np.where(inside, weight * values, 0)
        return [acc.astype(x.dtype)]

    def lower(self, node):
        x, grid, y = node.inputs[0], node.inputs[1], node.outputs[0]
        mode, padding, align = self._attrs(node)
        k, ct = x.rank - 2, _compute_type(x.dtype)
        if y.size and any(n == 0 for n in x.shape[2:]):
            raise ShapeError(f"GridSample {node.name!r}: cannot sample an empty input {list(x.shape)}")
        xs, gs = contiguous_strides(x.shape), contiguous_strides(grid.shape)
        lets = [f"const int64_t g = {flat([('o0', gs[0])] + [(f'o{2 + a}', gs[1 + a]) for a in range(k)])};"]
        for a in range(k):
            lets += _axis_lets(a, k, x.shape[2 + a], mode, padding, align, ct)
        if mode == "nearest":
            index = flat([("o0", xs[0]), ("o1", xs[1])] + [(f"i{a}", xs[2 + a]) for a in range(k)])
            if padding == "zeros":
                inside = " && ".join(f"i{a} >= 0" for a in range(k))
                return [indexed_kernel(node, [x, grid], y, f"({inside}) ? in0[{index}] : 0", lets)]
            return [indexed_kernel(node, [x, grid], y, f"in0[{index}]", lets)]
        taps = TAPS[mode]
        loops = "".join(f"for (int t{a} = 0; t{a} < {taps}; ++t{a}) " for a in range(k))
        guard = "if (" + " && ".join(f"i{a}[t{a}] >= 0" for a in range(k)) + ") " if padding == "zeros" else ""
        weight = " * ".join(f"w{a}[t{a}]" for a in range(k))
        index = flat([("o0", xs[0]), ("o1", xs[1])] + [(f"i{a}[t{a}]", xs[2 + a]) for a in range(k)])
        lets += [f"{ct.c} acc = 0;", f"{loops}{guard}acc += {weight} * ({ct.c})in0[{index}];"]
        return [indexed_kernel(node, [x, grid], y, "acc", lets)]


@register("AffineGrid", since=[20])
class AffineGrid(OpDef):
    def _size(self, node: Node) -> list[int]:
        theta = need_input(node, 0)
        size = [int(v) for v in const_input(node, 1, "size").reshape(-1)]
        k = len(size) - 2
        if k not in (2, 3) or any(v < 0 for v in size) or theta.shape != (size[0], k, k + 1):
            raise ShapeError(f"AffineGrid {node.name!r}: theta {list(theta.shape)} does not fit size {size}")
        return size

    @staticmethod
    def _axis(length: int, align: bool) -> tuple[float, float]:
        """(start, step) of the normalised coordinates along an axis of `length`."""
        if length == 0:
            return 0.0, 0.0
        if align:
            return -1.0, (2.0 / (length - 1) if length > 1 else 0.0)
        return -1.0 + 1.0 / length, 2.0 / length

    def infer(self, node):
        theta = need_input(node, 0)
        if not theta.dtype.is_float:
            raise UnsupportedError(f"AffineGrid {node.name!r}: theta must be a float tensor, not {theta.dtype}")
        size = self._size(node)
        return [(theta.dtype, (size[0], *size[2:], len(size) - 2))]

    def reference(self, node, inputs):
        theta, size, align = inputs[0], self._size(node), bool(node.attr("align_corners", 0))
        axes = []
        for length in size[2:]:
            start, step = self._axis(length, align)
            axes.append(start + np.arange(length) * step)
        mesh = np.meshgrid(*axes, indexing="ij")  # outermost spatial axis first
        homo = np.stack([*reversed(mesh), np.ones(tuple(size[2:]))], axis=-1)  # (..., x, y[, z], 1)
        grid = np.einsum("nij,...j->n...i", theta.astype(np.float64), homo)
        return [grid.astype(theta.dtype)]

    def lower(self, node):
        theta, y = node.inputs[0], node.outputs[0]
        size, align = self._size(node), bool(node.attr("align_corners", 0))
        k = len(size) - 2
        lit = lambda v: c_literal(v, FLOAT64)  # noqa: E731
        coords = []
        for j in range(k):  # coordinate j moves along spatial axis k-1-j, output axis k-j
            start, step = self._axis(size[1 + k - j], align)
            coords.append(f"c{j} = {lit(start)} + (double)o{k - j} * {lit(step)}")
        lets = [f"const double {', '.join(coords)};", f"const int64_t row = o0 * {k * (k + 1)} + o{k + 1} * {k + 1};"]
        terms = [f"(double)in0[row + {j}] * c{j}" for j in range(k)] + [f"(double)in0[row + {k}]"]
        return [indexed_kernel(node, [theta], y, " + ".join(terms), lets)]
