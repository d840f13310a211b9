"""Helpers shared by op families: broadcasting, strides, loop nests, C literals, attributes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import ml_dtypes
import numpy as np
import onnx.numpy_helper

from ..errors import CompileTimeValueError, ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import DType
from ..ir.graph import Node, Value
from .registry import Kernel

Shape = tuple[int, ...]


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = acc
        acc *= shape[i]
    return strides


def broadcast_shapes(node: Node, *shapes: Sequence[int]) -> Shape:
    """numpy broadcasting of `shapes`, or a ShapeError naming the node."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"{node.op} {node.name!r}: shapes {[list(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Strides that read a contiguous `in_shape` tensor broadcast to `out_shape` (0 on broadcast axes)."""
    own = contiguous_strides(in_shape)
    pad = len(out_shape) - len(in_shape)
    return [0 if i < pad or in_shape[i - pad] == 1 else own[i - pad] for i in range(len(out_shape))]


def coalesce(dims: Sequence[int], strides: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge adjacent loop axes that every operand walks as one; drop extent-1 axes."""
    keep = [i for i, d in enumerate(dims) if d != 1]
    out_dims: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides]
    for i in keep:
        if out_dims and all(s[-1] == st[i] * dims[i] for s, st in zip(out_strides, strides)):
            out_dims[-1] *= dims[i]
            for s, st in zip(out_strides, strides):
                s[-1] = st[i]
            continue
        out_dims.append(dims[i])
        for s, st in zip(out_strides, strides):
            s.append(st[i])
    return out_dims, out_strides


def flat_index(dims: Sequence[int], strides: Sequence[int], offset: int = 0, var: str = "i") -> str:
    """C text for the element of an operand read with `strides` at flat (row-major) position `var` of `dims`."""
    dims, (strides, walk) = coalesce(dims, [list(strides), contiguous_strides(dims)])
    if strides == walk:
        terms = [var]
    else:
        terms = []
        for a, (d, s) in enumerate(zip(dims, strides)):
            if s == 0:
                continue
            q = var if walk[a] == 1 else f"{var} / {walk[a]}"
            q = q if a == 0 else f"{q} % {d}" if q == var else f"({q}) % {d}"
            terms.append(q if s == 1 else f"({q}) * {s}")
    if offset:
        terms.append(str(offset))
    return " + ".join(terms) or "0"


def index_expr(offset: int, strides: Sequence[int]) -> str:
    terms = [f"i{k}" if s == 1 else f"i{k} * {s}" for k, s in enumerate(strides) if s != 0]
    if offset or not terms:
        terms.insert(0, str(offset))
    return " + ".join(terms)


def loop_kernel(
    name: str,
    inputs: Sequence[Value],
    output: Value,
    expr: str,
    dims: Sequence[int],
    in_strides: Sequence[Sequence[int]],
    out_strides: Sequence[int] | None = None,
    in_offsets: Sequence[int] | None = None,
    out_offset: int = 0,
    lets: Sequence[str] = (),
) -> Kernel:
    """An 'elementwise' kernel: out[...] = expr(v0, v1, ...) over the loop nest `dims`.

    Each operand is addressed as offset + sum(i_k * stride_k); `expr` reads inputs as v0, v1, ...
    `lets`: statements computed before the store (fused kernels name their intermediate values there).
    """
    out_strides = list(out_strides) if out_strides is not None else contiguous_strides(dims)
    loop_dims, all_strides = coalesce(dims, [out_strides, *in_strides])
    offsets = list(in_offsets) if in_offsets is not None else [0] * len(inputs)
    loads = [{"ctype": v.dtype.c, "index": index_expr(off, st)} for v, off, st in zip(inputs, offsets, all_strides[1:])]
    params = {
        "dims": loop_dims,
        "loads": loads,
        "store": index_expr(out_offset, all_strides[0]),
        "expr": expr,
        "out_ctype": output.dtype.c,
    }
    if lets:
        params["lets"] = list(lets)
    fusable = {
        "dims": list(dims),
        "expr": expr,
        "in_strides": [list(st) for st in in_strides],
        "out_strides": list(out_strides),
        "in_offsets": offsets,
        "out_offset": out_offset,
        "lets": list(lets),
    }
    return Kernel("elementwise", name, list(inputs), [output], params, fusable=fusable)


def copy_kernel(name: str, x: Value, y: Value) -> Kernel:
    """y = x element for element, both contiguous with the same number of elements."""
    return loop_kernel(name, [x], y, "v0", [x.size], [[1]])


# Storage-only types (runtime_c/mlcc_convert.h): (function widening bits to float, function rounding a double).
# The float8 ones saturate (Cast's default): out-of-range values and infinities become the largest finite
# value; NO_SATURATE has the functions that give infinity or NaN instead (Cast with saturate=0).
STORAGE_CONVERT = {
    "float16": ("mlcc_f16_to_f32", "mlcc_to_f16"),
    "bfloat16": ("mlcc_bf16_to_f32", "mlcc_to_bf16"),
    **{
        f"float{f[1:]}": (f"mlcc_{f}_to_f32", f"mlcc_to_{f}")
        for f in ("f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz")
    },
    "float8e8m0": ("mlcc_f8e8m0_to_f32", "mlcc_to_f8e8m0_up"),  # round up, saturating: Cast's defaults
    "float4e2m1": ("mlcc_f4e2m1_to_f32", "mlcc_to_f4e2m1"),  # always saturates (no infinity, no NaN)
    # sub-byte integers from a float: truncated, 0 where out of range (as numpy/ml_dtypes and ONNX's reference)
    **{t: (f"mlcc_{t[0]}{t[-1]}_to_f32", f"mlcc_to_{t[0]}{t[-1]}") for t in ("int4", "uint4", "int2", "uint2")},
}
WRAP = {t: f"mlcc_wrap_{t[0]}{t[-1]}" for t in ("int4", "uint4", "int2", "uint2")}  # from an integer: low bits
ROUND_MODES = {"up": 0, "down": 1, "nearest": 2}  # Cast's round_mode for float8e8m0
NO_SATURATE = {f"float{f[1:]}": f"mlcc_to_{f}_nosat" for f in ("f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz")}


def convert_expr(x: str, src: DType, to: DType, saturate: bool = True, round_mode: str = "up") -> str:
    """C expression converting the `src` value `x` to `to` (ONNX Cast semantics for these types)."""
    if src.storage_only:
        x = f"{STORAGE_CONVERT[src.name][0]}({x})"
    if to.name in WRAP and src.kind != "float":
        return f"{WRAP[to.name]}((int64_t){x})"
    if to.kind == "bool":
        return f"({x} != 0)"
    if to.name == "float8e8m0":
        return f"mlcc_to_f8e8m0((float){x}, {int(saturate)}, {ROUND_MODES[round_mode]})"
    if to.storage_only:
        narrow = STORAGE_CONVERT[to.name][1] if saturate else NO_SATURATE.get(to.name, STORAGE_CONVERT[to.name][1])
        return f"{narrow}((double){x})"
    return f"({to.c}){x}"


def cast_mode(node: Node) -> tuple[bool, str]:
    """Cast's saturate (float8 targets, opset 19+) and round_mode (float8e8m0, opset 24+) attributes."""
    mode = node.attr("round_mode", "up")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode not in ROUND_MODES:
        raise ModelError(f"{node.op} {node.name!r}: round_mode {mode!r} is not one of {', '.join(ROUND_MODES)}")
    return bool(node.attr("saturate", 1)), mode


def cast_array(x: np.ndarray, to: DType, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """numpy's x.astype(to) with ONNX Cast semantics: float8 targets saturate unless told not to."""
    if to.name == "float8e8m0":
        return onnx.numpy_helper.to_float8e8m0(x, saturate, round_mode)
    if saturate and to.name.startswith("float8"):
        info = ml_dtypes.finfo(to.np)
        return np.clip(x, info.min, info.max).astype(to.np)
    return x.astype(to.np)


def c_literal(value: float | int | bool, dtype: DType) -> str:
    """A C literal of `value` in `dtype`, exact and readable."""
    if dtype.kind == "bool":
        return "true" if value else "false"
    if dtype.storage_only:
        bits = int(np.array(value, dtype=dtype.np).view(f"uint{8 * dtype.itemsize}"))
        return f"UINT{8 * dtype.itemsize}_C(0x{bits:0{2 * dtype.itemsize}x})"
    if dtype.is_float:
        v = float(value)
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        if dtype.c == "float":
            return np.format_float_positional(np.float32(v), unique=True, trim="0") + "f"
        return np.format_float_positional(np.float64(v), unique=True, trim="0")
    v = int(value)
    if dtype.c == "int64_t":
        return f"INT64_C({v})" if not -(2**31) < v < 2**31 else str(v)
    if dtype.c == "uint64_t":
        return f"UINT64_C({v})"
    return str(v)


FAST_FLOAT_MATH = {"exp", "tanh", "erf"}  # runtime_c/mlcc_math.h: branch-free, so loops using them vectorise


def cmath(fn: str, dtype: DType) -> str:
    """The C math function `fn` for `dtype`: mlcc_expf (mlcc_math.h) or sqrtf for float, exp or sqrt for
    double."""
    if dtype.c != "float":
        return fn
    return f"mlcc_{fn}f" if fn in FAST_FLOAT_MATH else fn + "f"


def logistic_den(arg: str, dtype: DType) -> str:
    """1 + exp(-arg) in C: mlcc_logistic_denf (mlcc_math.h) for float."""
    return f"mlcc_logistic_denf({arg})" if dtype.c == "float" else f"(1 + exp(-({arg})))"


def require_c(node: Node, *values: Value | None) -> None:
    for v in values:
        if v is not None and v.dtype.c is None:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {v.dtype} is not supported by codegen yet")


def const_input(node: Node, i: int, what: str) -> np.ndarray | None:
    """The compile-time value of input i, or a ShapeError explaining that it must be known."""
    v = node.input(i)
    if v is None:
        return None
    if v.data is None:
        raise CompileTimeValueError(
            f"{node.op} {node.name!r}: input {i} ({what}) must be known at compile time, "
            f"but {v.name!r} is computed at run time; mlcc compiles static shapes",
            v.name,
        )
    return v.data


def norm_axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ModelError(f"{node.op} {node.name!r}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def same_as_input(node: Node, i: int = 0) -> list[tuple[DType, Shape]]:
    x = node.inputs[i]
    assert x is not None
    return [(x.dtype, x.shape)]


def need_input(node: Node, i: int) -> Value:
    v = node.input(i)
    if v is None:
        raise ModelError(f"{node.op} {node.name!r}: required input {i} is missing")
    return v
