"""Fused: a chain (an in-tree) of elementwise nodes run as one kernel, made by compiler/passes/fuse.py.

A Fused node (domain "mlcc") keeps its original nodes in attrs["body"], in order, the last one producing the
node's output. Each body node lowers, on its own, to one "elementwise" loop (Kernel.fusable, see
common.loop_kernel) over the output's shape; fusion composes those loops into one: the fused kernel loads
every external operand once, computes each intermediate value into a local (`const T tK = ...;`, rounded to
its own element type exactly as the separate kernel would have stored it) and stores only the last result.
One pass over memory instead of one per node, and bit-identical numbers.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InternalError
from ..ir.graph import Node, Value
from .common import contiguous_strides, loop_kernel
from .registry import Kernel, OpDef, lookup, register

FUSED_DOMAIN = "mlcc"
_OPERAND = re.compile(r"\bv(\d+)\b")


def single_loop(node: Node) -> Kernel | None:
    """The node's lowering if it is one elementwise loop over its output's shape written contiguously."""
    entry = lookup(node.op, node.domain, node.version)
    if entry is None or len(node.outputs) != 1 or entry.dynamic_axes(node):
        return None
    try:
        kernels = entry.lower(node)
    except Exception:  # noqa: BLE001 - a node that cannot lower here is simply not fused
        return None
    if len(kernels) != 1 or kernels[0].fusable is None or kernels[0].outputs != node.outputs:
        return None
    f, out = kernels[0].fusable, node.outputs[0]
    if f["lets"] or f["dims"] != list(out.shape) or f["out_offset"] != 0:
        return None
    if _walk(f["dims"], f["out_strides"]) != _walk(f["dims"], contiguous_strides(out.shape)):
        return None
    return kernels[0]


def _walk(dims: list[int], strides: list[int]) -> list[int]:
    """Strides as they matter: an axis of extent 1 is never stepped along."""
    return [s if d != 1 else 0 for d, s in zip(dims, strides)]


def reads_elementwise(kernel: Kernel, v: Value) -> bool:
    """Whether `kernel` reads every use of `v` element for element (same index as its output, no broadcast)."""
    f = kernel.fusable
    assert f is not None
    same = _walk(f["dims"], contiguous_strides(f["dims"]))
    uses = [i for i, x in enumerate(kernel.inputs) if x is v]
    return bool(uses) and all(_walk(f["dims"], f["in_strides"][i]) == same and f["in_offsets"][i] == 0 for i in uses)


def _rename(expr: str, names: list[str]) -> str:
    """`expr` with its operands v0, v1, ... replaced by names[0], names[1], ..."""
    return _OPERAND.sub(lambda m: names[int(m.group(1))], expr)


def kernel_name(body: list[Node]) -> str:
    ops = [n.op.lower() for n in body]
    return "fused_" + ("_".join(ops) if len(ops) <= 3 else f"{ops[0]}_{ops[1]}_{len(ops) - 2}more")


@register("Fused", since=1, domain=FUSED_DOMAIN)
class Fused(OpDef):
    def infer(self, node: Node):
        out = node.attrs["body"][-1].outputs[0]
        return [(out.dtype, out.shape)]

    def reference(self, node: Node, inputs):
        known = {id(v): x for v, x in zip(node.inputs, inputs)}
        for b in node.attrs["body"]:
            entry = lookup(b.op, b.domain, b.version)
            assert entry is not None
            (result,) = entry.reference(b, [None if v is None else known.get(id(v), v.data) for v in b.inputs])
            known[id(b.outputs[0])] = np.asarray(result)
        return [known[id(node.outputs[0])]]

    def lower(self, node: Node) -> list[Kernel]:
        body: list[Node] = node.attrs["body"]
        operands: list[Value] = []
        strides: list[list[int]] = []
        offsets: list[int] = []
        slots: dict[tuple, int] = {}
        local: dict[int, str] = {}  # id(intermediate value) -> its C local
        lets: list[str] = []
        expr = ""
        for k, b in enumerate(body):
            kernel = single_loop(b)
            if kernel is None:
                raise InternalError(f"fused node {node.name!r}: {b.op} {b.name!r} is not one elementwise loop")
            f = kernel.fusable
            names = []
            for i, v in enumerate(kernel.inputs):
                if id(v) in local:
                    if not reads_elementwise(kernel, v):
                        raise InternalError(f"fused node {node.name!r}: {v.name!r} is not read element for element")
                    names.append(local[id(v)])
                    continue
                key = (id(v), tuple(f["in_strides"][i]), f["in_offsets"][i])
                if key not in slots:
                    slots[key] = len(operands)
                    operands.append(v)
                    strides.append(f["in_strides"][i])
                    offsets.append(f["in_offsets"][i])
                names.append(f"v{slots[key]}")
            expr = _rename(f["expr"], names)
            out = b.outputs[0]
            if k < len(body) - 1:
                local[id(out)] = f"t{k}"
                lets.append(f"const {out.dtype.c} t{k} = ({out.dtype.c})({expr});")
        out = node.outputs[0]
        return [loop_kernel(kernel_name(body), operands, out, expr, list(out.shape), strides, None, offsets, 0, lets)]
