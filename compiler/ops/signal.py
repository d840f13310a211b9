"""Signal processing: DFT (opsets 17 and 20), STFT (opset 17) and MelWeightMatrix (opset 17).

DFT and STFT run on the "dft" kernel family, a direct O(n^2) transform rather than an FFT: one work item per
output bin of a line sums every input sample of that line. Twiddles stay accurate for any length: the index
product k*n is reduced modulo the DFT length in integers before it becomes an angle, and the angles, their sines
and cosines and the sums are all double precision, rounded to the element type once at the end.

The trailing dimension holds a value: 1 (real) or 2 (real, imaginary). dft_length pads the signal with zeros or
truncates it; for the one-sided inverse (IRFFT) it is the length of the real output and the one-sided input is
padded or cut to dft_length // 2 + 1 bins, as numpy's irfft (onnx's reference) does and onnxruntime does not;
the imaginary parts of the DC and Nyquist bins are ignored there. As the spec says, the one-sided forward DFT
takes only real input and the one-sided inverse only complex input. STFT, as onnx's reference and onnxruntime,
also takes a complex signal with onesided=1 (its default) and then returns the first frame_length // 2 + 1 bins
of the full spectrum.

MelWeightMatrix usually folds to constants. When sample_rate or the edge frequencies are computed at run time,
it lowers to the "indexed" family (each weight computed from its own bin and band); num_mel_bins and dft_length
fix the output shape and must be known at compile time. Frequencies are computed in double precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import BY_ONNX, FLOAT64
from ..ir.graph import Node, Value
from .common import c_literal, const_input, need_input, require_c
from .indexed import indexed_kernel
from .registry import Kernel, OpDef, register

LN10 = math.log(10.0)


def int_scalar(node: Node, i: int, what: str) -> int | None:
    """The compile-time integer scalar input i, or None where the optional input is absent."""
    data = const_input(node, i, what)
    if data is None:
        return None
    data = np.asarray(data)
    if data.size != 1 or data.dtype.kind not in "iu":
        raise ModelError(f"{node.op} {node.name!r}: {what} must be one integer, got {data.tolist()}")
    return int(data.reshape(-1)[0])


def flag(node: Node, name: str, default: int) -> bool:
    value = node.attr(name, default)
    if value not in (0, 1):
        raise ModelError(f"{node.op} {node.name!r}: attribute {name} must be 0 or 1, got {value}")
    return bool(value)


@dataclass
class Transform:
    """One DFT over lines of a signal: each line's samples start at `x_base` (C text in o, i), `x_stride` apart."""

    outer: int  # lines before the transformed axis (o)
    inner: int  # lines after it, the value axis excluded (i)
    bins: int  # output bins per line (k)
    length: int  # the DFT length
    used: int  # input samples (bins for IRFFT) each output bin sums
    complex_in: bool
    complex_out: bool
    inverse: bool
    hermitian: bool  # IRFFT: a one-sided spectrum in, its real signal out
    x_base: str
    x_stride: int


def dft_kernel(name: str, node: Node, t: Transform, window: Value | None = None) -> Kernel:
    """A "dft" kernel writing Y as [outer, bins, inner, 1 or 2], one work item per output bin."""
    x, y = node.inputs[0], node.outputs[0]
    require_c(node, x, window, y)
    turn = (2.0 if t.inverse else -2.0) * math.pi / t.length
    params = {
        "ctype": x.dtype.c,
        "work_items": t.outer * t.bins * t.inner,
        "i_expr": f"item % {t.inner}" if t.inner > 1 else "0",
        "k_expr": f"(item / {t.inner}) % {t.bins}" if t.inner > 1 else f"item % {t.bins}",
        "o_expr": f"item / {t.inner * t.bins}",
        "x_base": t.x_base,
        "x_stride": t.x_stride,
        "used": t.used,
        "length": t.length,
        "turn": c_literal(turn, FLOAT64),
        "scale": c_literal(1.0 / t.length if t.inverse else 1.0, FLOAT64),
        "complex_in": t.complex_in,
        "complex_out": t.complex_out,
        "hermitian": t.hermitian,
        "window": window is not None,
    }
    inputs, names = ([x, window], ["X", "W", "Y"]) if window is not None else ([x], ["X", "Y"])
    return Kernel("dft", name, inputs, [y], params, names)


def as_complex(x: np.ndarray) -> np.ndarray:
    """The signal of x[..., 1 or 2] as float64 or complex128, the value axis dropped."""
    x = x.astype(np.float64)
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0]


def as_pairs(y: np.ndarray) -> np.ndarray:
    return np.stack([y.real, y.imag], axis=-1)


@register("DFT", since=[17, 20])
class DFT(OpDef):
    def _axis(self, node: Node, rank: int) -> int:
        if node.version >= 20:
            axis = int_scalar(node, 2, "axis")
            axis = -2 if axis is None else axis
        else:
            axis = int(node.attr("axis", 1))
        if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
            raise ModelError(
                f"DFT {node.name!r}: axis {axis} is out of range for rank {rank}: it must name a signal axis, "
                f"in [{-rank}, -2] or [0, {rank - 2}] (the last axis holds the real and imaginary parts)"
            )
        return axis + rank if axis < 0 else axis

    def _plan(self, node: Node) -> tuple[Transform, tuple[int, ...]]:
        x = need_input(node, 0)
        if x.rank < 2 or x.shape[-1] not in (1, 2):
            raise ShapeError(
                f"DFT {node.name!r}: input {list(x.shape)} must have rank 2 or more and a last axis of 1 (real) "
                "or 2 (complex)"
            )
        if not x.dtype.is_float:
            raise ModelError(f"DFT {node.name!r}: input element type {x.dtype} is not a floating-point type")
        axis = self._axis(node, x.rank)
        inverse, onesided = flag(node, "inverse", 0), flag(node, "onesided", 0)
        complex_in = x.shape[-1] == 2
        if onesided and not inverse and complex_in:
            raise ModelError(f"DFT {node.name!r}: the one-sided forward DFT (RFFT) takes real input (last axis 1)")
        if onesided and inverse and not complex_in:
            raise ModelError(f"DFT {node.name!r}: the one-sided inverse DFT (IRFFT) takes complex input (last axis 2)")
        n = x.shape[axis]
        hermitian = onesided and inverse
        length = int_scalar(node, 1, "dft_length")
        if length is None:
            length = 2 * (n - 1) if hermitian else n
        if length <= 0:
            raise ModelError(f"DFT {node.name!r}: dft_length must be positive, got {length}")
        bins = length // 2 + 1 if onesided and not inverse else length
        outer = math.prod(x.shape[:axis])
        inner = math.prod(x.shape[axis + 1 : -1])
        c = x.shape[-1]
        t = Transform(
            outer=outer,
            inner=inner,
            bins=bins,
            length=length,
            used=min(n, length // 2 + 1 if hermitian else length),
            complex_in=complex_in,
            complex_out=not hermitian,
            inverse=inverse,
            hermitian=hermitian,
            x_base=f"o * {n * inner * c} + i * {c}",
            x_stride=inner * c,
        )
        shape = (*x.shape[:axis], bins, *x.shape[axis + 1 : -1], 1 if hermitian else 2)
        return t, shape

    def infer(self, node):
        _, shape = self._plan(node)
        return [(need_input(node, 0).dtype, shape)]

    def reference(self, node, inputs):
        t, shape = self._plan(node)
        x = inputs[0]
        axis = self._axis(node, x.ndim)
        signal = as_complex(x)
        if t.hermitian:
            y = np.fft.irfft(signal, n=t.length, axis=axis)[..., None]
        else:
            fn = np.fft.ifft if t.inverse else np.fft.fft
            y = as_pairs(np.take(fn(signal, n=t.length, axis=axis), range(t.bins), axis=axis))
        return [y.astype(x.dtype).reshape(shape)]

    def lower(self, node):
        t, _ = self._plan(node)
        if node.outputs[0].size == 0:
            return []
        return [dft_kernel("dft", node, t)]


@register("STFT", since=[17])
class STFT(OpDef):
    def _plan(self, node: Node) -> tuple[Transform, int, tuple[int, ...]]:
        """The transform, the frame step and the output shape."""
        x = need_input(node, 0)
        if x.rank != 3 or x.shape[-1] not in (1, 2):
            raise ShapeError(
                f"STFT {node.name!r}: signal {list(x.shape)} must be [batch_size, signal_length, 1 (real) or 2 "
                "(complex)]"
            )
        if not x.dtype.is_float:
            raise ModelError(f"STFT {node.name!r}: signal element type {x.dtype} is not a floating-point type")
        batch, n, c = x.shape
        step = int_scalar(node, 1, "frame_step")
        if step is None:
            raise ModelError(f"STFT {node.name!r}: required input 1 (frame_step) is missing")
        if step <= 0:
            raise ModelError(f"STFT {node.name!r}: frame_step must be positive, got {step}")
        window = node.input(2)
        if window is not None and (window.rank != 1 or window.dtype != x.dtype):
            raise ShapeError(
                f"STFT {node.name!r}: window {window.dtype}{list(window.shape)} must be 1-D of the signal's "
                f"element type {x.dtype}"
            )
        length = int_scalar(node, 3, "frame_length")
        if length is None:
            length = window.shape[0] if window is not None else n
        elif window is not None and window.shape[0] != length:
            raise ShapeError(
                f"STFT {node.name!r}: window of length {window.shape[0]} does not match frame_length {length}"
            )
        if not 0 < length <= n:
            raise ShapeError(f"STFT {node.name!r}: frame_length {length} must be in [1, {n}], the signal length")
        frames = (n - length) // step + 1
        bins = length // 2 + 1 if flag(node, "onesided", 1) else length
        t = Transform(
            outer=batch * frames,
            inner=1,
            bins=bins,
            length=length,
            used=length,
            complex_in=c == 2,
            complex_out=True,
            inverse=False,
            hermitian=False,
            x_base=f"(o / {frames}) * {n * c} + (o % {frames}) * {step * c}",
            x_stride=c,
        )
        return t, step, (batch, frames, bins, 2)

    def infer(self, node):
        _, _, shape = self._plan(node)
        return [(need_input(node, 0).dtype, shape)]

    def reference(self, node, inputs):
        t, step, shape = self._plan(node)
        x = inputs[0]
        window = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.ones(t.length)
        at = np.arange(shape[1])[:, None] * step + np.arange(t.length)[None, :]
        frames = as_complex(x)[:, at] * window.astype(np.float64)
        y = np.fft.fft(frames, n=t.length, axis=-1)[..., : t.bins]
        return [as_pairs(y).astype(x.dtype).reshape(shape)]

    def lower(self, node):
        t, _, _ = self._plan(node)
        if node.outputs[0].size == 0:
            return []
        return [dft_kernel("stft", node, t, node.input(2))]


def mel_bins(count: int, length: int, rate: float, lower: float, upper: float) -> np.ndarray:
    """The count + 2 spectrogram bins of the band edges and centres, evenly spaced on the mel scale (float64)."""
    lo = 2595.0 * np.log1p(lower / 700.0) / LN10
    step = (2595.0 * np.log1p(upper / 700.0) / LN10 - lo) / (count + 2)
    hz = 700.0 * np.expm1((np.arange(count + 2, dtype=np.float64) * step + lo) / 2595.0 * LN10)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor((length + 1) * hz / rate)


def mel_weights(j: np.ndarray, left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Triangle weights of spectrogram bin j in bands (left, centre, right): rising to 1 at the centre, then falling."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where(left == centre, 1.0, (j - left) / (centre - left))
        falling = (right - j) / (right - centre)
    weight = np.where((j >= left) & (j <= centre), rising, 0.0)
    weight = np.where((j >= centre) & (j < right), falling, weight)
    # Non-finite band edges (a bad sample_rate at run time) give weight 0, never NaN, in every output type.
    return np.where((weight >= 0.0) & (weight <= 1.0), weight, 0.0)


@register("MelWeightMatrix", since=[17])
class MelWeightMatrix(OpDef):
    def _sizes(self, node: Node) -> tuple[int, int]:
        """num_mel_bins and dft_length, which fix the output shape."""
        for i, what in enumerate(("num_mel_bins", "dft_length", "sample_rate")):
            v = need_input(node, i)
            if v.size != 1 or v.dtype.kind not in ("int", "uint"):
                raise ModelError(
                    f"MelWeightMatrix {node.name!r}: {what} must be one integer, got {v.dtype}{list(v.shape)}"
                )
        for i, what in ((3, "lower_edge_hertz"), (4, "upper_edge_hertz")):
            v = need_input(node, i)
            if v.size != 1 or not v.dtype.is_float:
                raise ModelError(
                    f"MelWeightMatrix {node.name!r}: {what} must be one float, got {v.dtype}{list(v.shape)}"
                )
        count, length = int_scalar(node, 0, "num_mel_bins"), int_scalar(node, 1, "dft_length")
        if count <= 0 or length <= 0:
            raise ModelError(
                f"MelWeightMatrix {node.name!r}: num_mel_bins ({count}) and dft_length ({length}) must be positive"
            )
        return count, length

    def _dtype(self, node: Node):
        code = node.attr("output_datatype", 1)
        dtype = BY_ONNX.get(code)
        if dtype is None or dtype.kind not in ("float", "int", "uint"):
            raise UnsupportedError(f"MelWeightMatrix {node.name!r}: output_datatype {code} is not supported")
        return dtype

    def _check_bins(self, node: Node, count: int, length: int) -> None:
        """Where every input is known: the bands must lie inside the spectrogram, as onnxruntime requires."""
        values = [node.inputs[i].data for i in (2, 3, 4)]
        if any(v is None for v in values):
            return
        rate, lower, upper = (float(np.asarray(v).reshape(-1)[0]) for v in values)
        if rate <= 0:
            raise ModelError(f"MelWeightMatrix {node.name!r}: sample_rate must be positive, got {rate:g}")
        bins = mel_bins(count, length, rate, lower, upper)
        if not np.all((bins >= 0) & (bins <= length // 2)):
            raise ModelError(
                f"MelWeightMatrix {node.name!r}: the edges [{lower:g}, {upper:g}] Hz give mel bands outside the "
                f"{length // 2 + 1} spectrogram bins of dft_length {length} at sample_rate {rate:g}"
            )

    def infer(self, node):
        count, length = self._sizes(node)
        self._check_bins(node, count, length)
        return [(self._dtype(node), (length // 2 + 1, count))]

    def reference(self, node, inputs):
        count, length = self._sizes(node)
        rate, lower, upper = (float(np.asarray(v).reshape(-1)[0]) for v in inputs[2:5])
        bins = mel_bins(count, length, rate, lower, upper)
        j = np.arange(length // 2 + 1, dtype=np.float64)[:, None]
        weights = mel_weights(j, bins[None, :-2], bins[None, 1:-1], bins[None, 2:])
        return [weights.astype(self._dtype(node).np)]

    def lower(self, node):
        count, length = self._sizes(node)
        inputs = [node.inputs[i] for i in (2, 3, 4)]
        ln10 = c_literal(LN10, FLOAT64)
        # Bins of band o1 (left, centre, right) from in0 = sample_rate, in1/in2 = lower/upper_edge_hertz.
        lets = [
            f"const double lo = 2595.0 * log1p((double)in1[0] / 700.0) / {ln10};",
            f"const double step = (2595.0 * log1p((double)in2[0] / 700.0) / {ln10} - lo) / {count + 2}.0;",
            "double edge[3];",
            "for (int q = 0; q < 3; ++q) {",
            f"  const double hz = 700.0 * expm1(((double)(o1 + q) * step + lo) / 2595.0 * {ln10});",
            f"  edge[q] = floor({length + 1}.0 * hz / (double)in0[0]);",
            "}",
            "const double j = (double)o0;",
            "double w = 0.0;",
            "if (j >= edge[0] && j <= edge[1]) w = edge[0] == edge[1] ? 1.0 : (j - edge[0]) / (edge[1] - edge[0]);",
            "if (j >= edge[1] && j < edge[2]) w = (edge[2] - j) / (edge[2] - edge[1]);",
        ]
        # As mel_weights: a weight outside [0, 1] (NaN from non-finite edges) is 0; NaN must never reach an int cast.
        expr = "w >= 0.0 && w <= 1.0 ? w : 0.0"
        return [indexed_kernel(node, inputs, node.outputs[0], expr, lets)]
