"""Element selection and thresholding from domain ai.onnx.ml: Binarizer and ArrayFeatureExtractor.

Binarizer maps X > threshold to 1 and everything else (NaN included) to 0, compared in double so an integer
is compared exactly. ArrayFeatureExtractor gathers the flattened indices Y along the last axis of X; a 1-D X
gives a [1, k] result, as onnxruntime does. An index out of range, which onnxruntime rejects at run time,
reads element 0 of its row (negative indices are wrapped once first).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64, INT32, INT64
from ..ir.graph import Node
from .common import c_literal, loop_kernel, need_input, require_c
from .indexed import indexed_kernel, safe_index
from .registry import OpDef, register

ML_DOMAIN = "ai.onnx.ml"
ML_TYPES = (FLOAT32, FLOAT64, INT64, INT32)  # the numeric T of both ops (their string variants are out of scope)


def check_ml_type(node: Node, what: str, dtype) -> None:
    if dtype not in ML_TYPES:
        raise UnsupportedError(
            f"{node.op} {node.name!r}: {what} of element type {dtype} is not supported "
            f"(supported: {', '.join(d.name for d in ML_TYPES)})"
        )


@register("Binarizer", since=[1], domain=ML_DOMAIN)
class Binarizer(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        check_ml_type(node, "X", x.dtype)
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x = inputs[0]
        return [(x.astype(np.float64) > float(node.attr("threshold", 0.0))).astype(x.dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x, y)
        if y.size == 0:
            return []
        threshold = c_literal(float(np.float32(node.attr("threshold", 0.0))), FLOAT64)
        return [loop_kernel("binarizer", [x], y, f"(double)v0 > {threshold}", [x.size], [[1]])]


@register("ArrayFeatureExtractor", since=[1], domain=ML_DOMAIN)
class ArrayFeatureExtractor(OpDef):
    def infer(self, node):
        x, idx = need_input(node, 0), need_input(node, 1)
        check_ml_type(node, "X", x.dtype)
        if idx.dtype != INT64:
            raise ModelError(f"ArrayFeatureExtractor {node.name!r}: Y must be int64, got {idx.dtype}")
        if x.rank == 0:
            raise ShapeError(f"ArrayFeatureExtractor {node.name!r}: X must have at least one axis")
        if idx.data is not None:
            n = x.shape[-1]
            bad = [int(i) for i in idx.data.reshape(-1) if not -n <= i < n]
            if bad:
                raise ShapeError(
                    f"ArrayFeatureExtractor {node.name!r}: indices {bad[:8]} are out of range for the last axis "
                    f"of X ({n})"
                )
        lead = (1,) if x.rank == 1 else x.shape[:-1]
        return [(x.dtype, (*lead, idx.size))]

    def reference(self, node, inputs):
        x, idx = inputs
        n = x.shape[-1]
        flat = idx.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + n, flat)
        flat = np.where((flat >= 0) & (flat < n), flat, 0)
        y = x[..., flat]
        return [y.reshape(node.outputs[0].shape)]

    def lower(self, node):
        x, idx, y = node.inputs[0], node.inputs[1], node.outputs[0]
        if y.size == 0:
            return []
        n = x.shape[-1]
        lets = [f"const int64_t g = {safe_index(f'in1[o{y.rank - 1}]', n)};"]
        row = " + ".join(f"o{a} * {int(np.prod(y.shape[a + 1 : -1], dtype=np.int64)) * n}" for a in range(y.rank - 1))
        expr = f"in0[{row} + g]" if x.rank > 1 else "in0[g]"
        return [indexed_kernel(node, [x, idx], y, expr, lets)]
