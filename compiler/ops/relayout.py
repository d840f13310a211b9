"""Ops that move elements between positions: ReverseSequence and Col2Im, on the "indexed" kernel family.

ReverseSequence reverses the first sequence_lens[b] steps along the time axis of each batch entry b; the
lengths are read at run time and clamped into [0, steps] so a bad length never reads outside the input.
Col2Im is the adjoint of im2col: each image element gathers (sums) the column entries of every sliding block
that covers it, which makes it a gather over the kernel offsets, as ConvTranspose is.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.graph import Node
from .common import const_input, contiguous_strides, need_input
from .indexed import flat, indexed_kernel
from .registry import OpDef, register


@register("ReverseSequence", since=[10])
class ReverseSequence(OpDef):
    def _axes(self, node: Node) -> tuple[int, int]:
        x, lens = need_input(node, 0), need_input(node, 1)
        batch, time = int(node.attr("batch_axis", 1)), int(node.attr("time_axis", 0))
        if {batch, time} != {0, 1} or x.rank < 2:
            raise ModelError(
                f"ReverseSequence {node.name!r}: batch_axis and time_axis must be 0 and 1, in either order"
            )
        if lens.shape != (x.shape[batch],) or not lens.dtype.is_int:
            raise ShapeError(
                f"ReverseSequence {node.name!r}: sequence_lens {list(lens.shape)} must list one integer length "
                f"per batch entry of input {list(x.shape)}"
            )
        return batch, time

    def infer(self, node):
        self._axes(node)
        x = node.inputs[0]
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        x, lens = inputs
        batch, time = self._axes(node)
        y = np.array(x, copy=True)
        for b, n in enumerate(np.clip(lens.astype(np.int64), 0, x.shape[time])):
            at = [slice(None)] * x.ndim
            at[batch], at[time] = b, slice(0, int(n))
            y[tuple(at)] = np.flip(x[tuple(at)], axis=0)
        return [y]

    def lower(self, node):
        x, lens, y = node.inputs[0], node.inputs[1], node.outputs[0]
        batch, time = self._axes(node)
        steps = x.shape[time]
        lets = [
            f"int64_t n = (int64_t)in1[o{batch}];",
            f"n = n < 0 ? 0 : (n > {steps} ? {steps} : n);",
            f"const int64_t t = o{time} < n ? n - 1 - o{time} : o{time};",
        ]
        index = flat([("t" if k == time else f"o{k}", s) for k, s in enumerate(contiguous_strides(x.shape))])
        return [indexed_kernel(node, [x, lens], y, f"in0[{index}]", lets)]


class _Col2ImPlan:
    """Image and block shapes, pads, strides, dilations and the number of blocks along each axis."""

    def __init__(self, node: Node) -> None:
        x = need_input(node, 0)
        self.image = [int(v) for v in const_input(node, 1, "image_shape").reshape(-1)]
        self.block = [int(v) for v in const_input(node, 2, "block_shape").reshape(-1)]
        k = len(self.block)
        self.dilations = list(node.attr("dilations") or [1] * k)
        self.strides = list(node.attr("strides") or [1] * k)
        pads = list(node.attr("pads") or [0] * (2 * k))
        if len(self.image) != k or len(self.dilations) != k or len(self.strides) != k or len(pads) != 2 * k:
            raise ShapeError(f"Col2Im {node.name!r}: image_shape, block_shape and the attributes differ in length")
        if min(self.block + self.dilations + self.strides, default=1) < 1 or min(self.image + pads, default=0) < 0:
            raise ShapeError(f"Col2Im {node.name!r}: block_shape, strides and dilations must be positive")
        self.pads, self.pads_end = pads[:k], pads[k:]
        self.blocks = [
            (i + pb + pe - d * (b - 1) - 1) // s + 1
            for i, b, d, s, pb, pe in zip(self.image, self.block, self.dilations, self.strides, pads[:k], pads[k:])
        ]
        kernel = math.prod(self.block)
        if x.rank != 3 or x.shape[1] % kernel or x.shape[2] != math.prod(self.blocks) or min(self.blocks) < 1:
            raise ShapeError(
                f"Col2Im {node.name!r}: input {list(x.shape)} does not hold {self.blocks} blocks of {self.block}"
            )
        self.channels = x.shape[1] // kernel


@register("Col2Im", since=[18])
class Col2Im(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        if x.dtype.kind == "bool":
            raise UnsupportedError(f"Col2Im {node.name!r}: element type {x.dtype} is not supported")
        plan = _Col2ImPlan(node)
        return [(x.dtype, (x.shape[0], plan.channels, *plan.image))]

    def reference(self, node, inputs):
        x, plan = inputs[0], _Col2ImPlan(node)
        n = x.shape[0]
        padded = [i + pb + pe for i, pb, pe in zip(plan.image, plan.pads, plan.pads_end)]
        out = np.zeros((n, plan.channels, *padded), dtype=x.dtype)
        cols = x.reshape(n, plan.channels, *plan.block, *plan.blocks)
        for offset in np.ndindex(*plan.block):
            at = tuple(
                slice(j * d, j * d + (b - 1) * s + 1, s)
                for j, d, b, s in zip(offset, plan.dilations, plan.blocks, plan.strides)
            )
            out[(slice(None), slice(None), *at)] += cols[(slice(None), slice(None), *offset)]
        crop = tuple(slice(p, p + i) for p, i in zip(plan.pads, plan.image))
        return [np.ascontiguousarray(out[(slice(None), slice(None), *crop)])]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        plan = _Col2ImPlan(node)
        k = len(plan.block)
        lets = [f"{y.dtype.c} acc = 0;"]
        block_terms, kernel_terms = [], []
        for a, (j_stride, b_stride) in enumerate(zip(contiguous_strides(plan.block), contiguous_strides(plan.blocks))):
            # image position o = b * stride - pad + j * dilation for block b and kernel offset j
            s, nb = plan.strides[a], plan.blocks[a]
            pos = (
                f"o{2 + a}"
                + (f" + {plan.pads[a]}" if plan.pads[a] else "")
                + f" - {flat([(f'j{a}', plan.dilations[a])])}"
            )
            skip = [f"p{a} < 0", f"p{a} >= {nb * s}"] + ([f"p{a} % {s} != 0"] if s > 1 else [])
            lets.append(
                f"for (int64_t j{a} = 0; j{a} < {plan.block[a]}; ++j{a}) {{"
                f" const int64_t p{a} = {pos}; if ({' || '.join(skip)}) continue;"
            )
            block_terms.append((f"p{a}" if s == 1 else f"(p{a} / {s})", b_stride))
            kernel_terms.append((f"j{a}", j_stride))
        blocks, kernel = math.prod(plan.blocks), math.prod(plan.block)
        row = f"(o1 * {kernel} + {flat(kernel_terms)})"
        lets.append(f"acc += in0[o0 * {x.shape[1] * blocks} + {row} * {blocks} + {flat(block_terms)}];")
        lets.append("}" * k)
        return [indexed_kernel(node, [x], y, "acc", lets)]
