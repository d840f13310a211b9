"""Normalisation-like ops: BatchNormalization (inference), LRN, Softmax, LogSoftmax."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedError
from ..ir.graph import Node
from .common import c_literal, cmath, contiguous_strides, loop_kernel, need_input, norm_axis, require_c
from .registry import Kernel, OpDef, register


@register("BatchNormalization", since=[7, 9, 14, 15])
class BatchNormalization(OpDef):
    """Inference form: Y = (X - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1).

    training_mode=1 (opset 14 on) normalises with the batch's own statistics (mean and population variance
    over every axis but 1, accumulated in double) and also gives the updated running mean and variance:
    input * momentum + batch statistic * (1 - momentum); one work item per channel ("batchnorm_train").
    """

    def _training(self, node: Node) -> bool:
        return node.version >= 14 and bool(node.attr("training_mode", 0))

    def infer(self, node):
        x = need_input(node, 0)
        if node.attr("training_mode", 0) and node.version < 14:
            raise UnsupportedError(f"BatchNormalization {node.name!r}: training_mode before opset 14 is not supported")
        if len(node.outputs) > (3 if self._training(node) else 1):
            raise UnsupportedError(
                f"BatchNormalization {node.name!r}: the training outputs (saved mean and variance) of opsets "
                "before 14 are not supported"
            )
        if x.rank < 2 or not x.dtype.is_float:
            raise UnsupportedError(f"BatchNormalization {node.name!r}: X {x.dtype}{list(x.shape)} is not supported")
        for i in range(1, 5):
            p = need_input(node, i)
            if p.shape != (x.shape[1],):
                raise ShapeError(
                    f"BatchNormalization {node.name!r}: input {i} {list(p.shape)} should be [{x.shape[1]}]"
                )
        stats = need_input(node, 3)
        return [(x.dtype, x.shape), (stats.dtype, stats.shape), (stats.dtype, stats.shape)][: len(node.outputs)]

    def reference(self, node, inputs):
        x, scale, b, mean, var = inputs[:5]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        eps = node.attr("epsilon", 1e-5)
        running = []
        if self._training(node):
            axes = tuple(a for a in range(x.ndim) if a != 1)
            momentum = node.attr("momentum", 0.9)
            batch_mean, batch_var = x.mean(axis=axes, dtype=np.float64), x.var(axis=axes, dtype=np.float64)
            running = [
                (mean * momentum + batch_mean * (1 - momentum)).astype(mean.dtype),
                (var * momentum + batch_var * (1 - momentum)).astype(var.dtype),
            ]
            mean, var = batch_mean.astype(x.dtype), batch_var.astype(x.dtype)
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + np.float32(eps)) * scale.reshape(
            shape
        ) + b.reshape(shape)
        return [y.astype(x.dtype), *running][: len(node.outputs)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        params = node.inputs[1:5]
        require_c(node, x, *params)
        eps = c_literal(node.attr("epsilon", 1e-5), x.dtype)
        if self._training(node):
            momentum = node.attr("momentum", 0.9)
            kparams = {
                "outer": x.shape[0],
                "channels": x.shape[1],
                "inner": int(np.prod(x.shape[2:], dtype=np.int64)),
                "ctype": x.dtype.c,
                "eps": eps,
                "momentum": repr(float(momentum)),
                "running": len(node.outputs) == 3,
                "work_items": x.shape[1],
            }
            names = ["X", "Scale", "B", "Mean", "Var", "Y", "RunningMean", "RunningVar"]
            return [Kernel("batchnorm_train", "batchnorm_train", [x, *params], list(node.outputs), kparams, names)]
        channel = [0, 1] + [0] * (x.rank - 2)
        expr = f"(v0 - v3) / {cmath('sqrt', x.dtype)}(v4 + {eps}) * v1 + v2"
        strides = [contiguous_strides(x.shape)] + [channel] * 4
        return [loop_kernel("batchnorm", [x, *params], y, expr, x.shape, strides)]


@register("LRN", since=[1, 13])
class LRN(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        if x.rank < 3 or not x.dtype.is_float:
            raise UnsupportedError(f"LRN {node.name!r}: X {x.dtype}{list(x.shape)} is not supported")
        if node.attr("size") is None or node.attr("size") < 1:
            raise ShapeError(f"LRN {node.name!r}: size must be a positive integer")
        return [(x.dtype, x.shape)]

    def _attrs(self, node: Node):
        return node.attr("size"), node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)

    def reference(self, node, inputs):
        x = inputs[0].astype(np.float64)
        size, alpha, beta, bias = self._attrs(node)
        sq = np.zeros_like(x)
        c = x.shape[1]
        for i in range(c):
            lo, hi = max(0, i - (size - 1) // 2), min(c - 1, i + -(-(size - 1) // 2))
            sq[:, i] = np.sum(x[:, lo : hi + 1] ** 2, axis=1)
        return [(x / (bias + alpha / size * sq) ** beta).astype(inputs[0].dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        size, alpha, beta, bias = self._attrs(node)
        t = x.dtype
        params = {
            "ctype": t.c,
            "N": x.shape[0],
            "C": x.shape[1],
            "inner": int(np.prod(x.shape[2:], dtype=np.int64)),
            "before": (size - 1) // 2,
            "after": -(-(size - 1) // 2),
            "scale": c_literal(alpha / size, t),
            "beta": c_literal(beta, t),
            "bias": c_literal(bias, t),
            "pow": cmath("pow", t),
        }
        return [Kernel("lrn", "lrn", [x], [y], params, ["X", "Y"])]


class SoftmaxBase(OpDef):
    """Softmax over `axis`; before opset 13 the input is viewed as 2-D [prod(:axis), prod(axis:)]."""

    log = False

    def _split(self, node: Node) -> tuple[int, int, int]:
        x = need_input(node, 0)
        default = -1 if node.version >= 13 else 1
        axis = norm_axis(node, node.attr("axis", default), x.rank)
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        if node.version < 13:
            return outer, int(np.prod(x.shape[axis:], dtype=np.int64)), 1
        return outer, x.shape[axis], int(np.prod(x.shape[axis + 1 :], dtype=np.int64))

    def infer(self, node):
        x = need_input(node, 0)
        if not x.dtype.is_float:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {x.dtype} is not supported")
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x = inputs[0]
        outer, n, inner = self._split(node)
        v = x.reshape(outer, n, inner).astype(np.float64)
        v = v - v.max(axis=1, keepdims=True)
        if self.log:
            y = v - np.log(np.exp(v).sum(axis=1, keepdims=True))
        else:
            e = np.exp(v)
            y = e / e.sum(axis=1, keepdims=True)
        return [y.reshape(x.shape).astype(x.dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x)
        outer, n, inner = self._split(node)
        t = x.dtype
        params = {
            "ctype": t.c,
            "outer": outer,
            "n": n,
            "inner": inner,
            "log": self.log,
            "exp": cmath("exp", t),
            "logf": cmath("log", t),
        }
        return [Kernel("softmax", node.op.lower(), [x], [y], params, ["X", "Y"])]


@register("Softmax", since=[1, 11, 13])
class Softmax(SoftmaxBase):
    log = False


@register("LogSoftmax", since=[1, 11, 13])
class LogSoftmax(SoftmaxBase):
    log = True
