"""RandomUniform, RandomNormal, RandomUniformLike, RandomNormalLike and Bernoulli: the "random" kernel
family on runtime_c/mlcc_random.h. (Bernoulli has a kernel of its own: ONNX's function body for it,
Cast(Greater(RandomUniformLike(p), p)), gives 1 with probability 1 - p, where the op's definition and
onnxruntime give 1 with probability p.)

Element i of a node's output in run r is a function of (key, r, i): key is the node's `seed` attribute (its
float bits) or, without one, a hash of the node's name and position, so a model gives the same sequence of
outputs in every instance, and each run of an instance draws fresh numbers (the generated run() counts
runs). The numbers are not numpy's: tests check the distributions, not values. These ops never fold at
compile time and common-subexpression elimination never merges two of them. c target only.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from ..errors import UnsupportedError
from ..ir.dtypes import BOOL, BY_ONNX, FLOAT32, FLOAT64, DType
from ..ir.graph import Node
from .common import c_literal, convert_expr, need_input
from .registry import Kernel, OpDef, register


def _key(node: Node) -> int:
    seed = node.attr("seed")
    if seed is not None:
        return struct.unpack("<Q", struct.pack("<d", float(seed)))[0]
    return int.from_bytes(hashlib.sha256(f"{node.op}:{node.name}".encode()).digest()[:8], "little")


class _Random(OpDef):
    normal = False
    like = False

    def _dtype(self, node: Node) -> DType:
        code = node.attr("dtype")
        if code is None:
            dtype = need_input(node, 0).dtype if self.like else FLOAT32
        else:
            dtype = BY_ONNX.get(int(code))
        if dtype is None or not dtype.is_float:
            raise UnsupportedError(f"{node.op} {node.name!r}: dtype {code} is not supported (a float type is)")
        return dtype

    def _shape(self, node: Node) -> tuple[int, ...]:
        if self.like:
            return need_input(node, 0).shape
        shape = node.attr("shape")
        if shape is None:
            raise UnsupportedError(f"{node.op} {node.name!r}: needs the shape attribute")
        return tuple(int(d) for d in shape)

    def foldable(self, node):
        return False  # a fresh draw every run

    def infer(self, node):
        return [(self._dtype(node), self._shape(node))]

    def reference(self, node, inputs):  # never folded; numpy draws from the same distribution
        rng = np.random.default_rng(_key(node) & 0xFFFFFFFF)
        shape, dtype = self._shape(node), self._dtype(node)
        if self.normal:
            x = rng.normal(node.attr("mean", 0.0), node.attr("scale", 1.0), shape)
        else:
            x = rng.uniform(node.attr("low", 0.0), node.attr("high", 1.0), shape)
        return [x.astype(dtype.np)]

    def lower(self, node):
        y = node.outputs[0]
        wide = FLOAT64
        if self.normal:
            a, b = float(node.attr("mean", 0.0)), float(node.attr("scale", 1.0))
            draw = f"{c_literal(a, wide)} + {c_literal(b, wide)} * mlcc_random_normal(key, run_index, (uint64_t)i)"
        else:
            lo, hi = float(node.attr("low", 0.0)), float(node.attr("high", 1.0))
            span = c_literal(hi - lo, wide)
            draw = f"{c_literal(lo, wide)} + {span} * mlcc_random_uniform(key, run_index, (uint64_t)i)"
        params = {
            "n": y.size,
            "key": f"UINT64_C(0x{_key(node):016x})",
            "store": convert_expr(f"({draw})", wide, y.dtype),
            "counter": True,
        }
        return [Kernel("random", node.op.lower(), [], [y], params, ["Y"])]


@register("RandomUniform", since=[1, 22])
class RandomUniform(_Random):
    pass


@register("RandomNormal", since=[1, 22])
class RandomNormal(_Random):
    normal = True


@register("RandomUniformLike", since=[1, 22])
class RandomUniformLike(_Random):
    like = True


@register("RandomNormalLike", since=[1, 22])
class RandomNormalLike(_Random):
    normal = True
    like = True


@register("Bernoulli", since=[15, 22])
class Bernoulli(_Random):
    """y = 1 with probability p (the input), else 0: a uniform draw u in [0, 1), y = u < p."""

    like = True

    def _dtype(self, node: Node) -> DType:
        code = node.attr("dtype")
        dtype = need_input(node, 0).dtype if code is None else BY_ONNX.get(int(code))
        if dtype is None or dtype.c is None:
            raise UnsupportedError(f"{node.op} {node.name!r}: dtype {code} is not supported")
        return dtype

    def reference(self, node, inputs):
        rng = np.random.default_rng(_key(node) & 0xFFFFFFFF)
        return [(rng.uniform(size=inputs[0].shape) < inputs[0]).astype(self._dtype(node).np)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        p = convert_expr("X[i]", x.dtype, FLOAT64)
        one = f"mlcc_random_uniform(key, run_index, (uint64_t)i) < {p}"
        params = {"n": y.size, "key": f"UINT64_C(0x{_key(node):016x})", "counter": True}
        params["store"] = convert_expr(f"({one})", BOOL, y.dtype)  # from bool
        return [Kernel("random", node.op.lower(), [x], [y], params, ["X", "Y"])]


def dropout_kernels(node: Node) -> list[Kernel]:
    """Dropout in training mode: mask = u >= ratio for a uniform draw u, y = mask * x / (1 - ratio); with a
    training_mode known only at run time, that or (where it is false) y = x and an all-true mask."""
    x, r, mode = node.inputs[0], node.input(1), node.input(2)
    wide = FLOAT64
    inputs, names = [x], ["X"]
    if r is None:
        ratio = "0.5"
    elif r.is_const:
        ratio = c_literal(float(np.asarray(r.data).reshape(-1)[0]), wide)
    else:
        ratio = convert_expr("R[0]", r.dtype, wide)
        inputs, names = [x, r], ["X", "R"]
    keep = f"(mlcc_random_uniform(key, run_index, (uint64_t)i) >= {ratio})"
    scaled = f"((double){keep} * {convert_expr('X[i]', x.dtype, wide)} * (1.0 / (1.0 - {ratio})))"
    if mode.data is None:  # run-time training_mode
        inputs, names = inputs + [mode], names + ["T"]
        train = convert_expr("T[0]", mode.dtype, BOOL)
        keep = f"(!{train} || {keep})"
        scaled = f"({train} ? {scaled} : {convert_expr('X[i]', x.dtype, wide)})"
    base = {"n": x.size, "key": f"UINT64_C(0x{_key(node):016x})", "counter": True}
    kernels = [
        Kernel(
            "random",
            "dropout",
            inputs,
            [node.outputs[0]],
            {**base, "store": convert_expr(scaled, wide, x.dtype)},
            names + ["Y"],
        )
    ]
    if len(node.outputs) > 1 and node.outputs[1] is not None:
        kernels.append(
            Kernel("random", "dropout_mask", inputs, [node.outputs[1]], {**base, "store": keep}, names + ["Y"])
        )
    return kernels
