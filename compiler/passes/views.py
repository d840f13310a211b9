"""Views: copies the memory planner removes by storing one value inside another (the c target).

Three kinds of kernel only move a contiguous block of bytes, and then need not run at all:
  - Concat with nothing before its axis (batch 1 along channels): each input is a block of the output, so
    the input's producer writes it straight into the output's buffer;
  - Split, likewise: each output is a block of the input;
  - Reshape, Flatten, Squeeze, Unsqueeze: the output is the input's bytes under another shape.
The block becomes a view: a child value at a byte offset in a parent. Each value has at most one parent,
so the views form a forest, and two values share bytes only when one is the other's ancestor, or both are
reshapes of one value: then they hold the same data, written once by one kernel. The memory planner gives
each tree one buffer whose lifetime covers all its values (so an in-place write over a member waits until
every member is dead). Values the caller or the weight blob holds, strings, and values with a run-time
extent are never views, nor is a concat input already a view elsewhere (Concat(x, x): the second copy stays).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..ir.dtypes import STRING
from ..ir.graph import Value
from ..ops.common import norm_axis

RELAYOUT = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


class View(NamedTuple):
    child: Value
    parent: Value
    offset: int  # bytes from the parent's first byte to the child's


def _placeable(v: Value, pinned: set[int]) -> bool:
    return (
        id(v) not in pinned
        and not v.is_const
        and v.dtype != STRING
        and not v.dynamic_axes
        and v.nbytes == v.size * v.dtype.itemsize
    )


def _outer(node, v: Value) -> int:
    """The product of v's dims before the node's axis."""
    return math.prod(v.shape[: norm_axis(node, node.attr("axis", 0), v.rank)])


def find_views(steps, pinned: set[int]) -> tuple[dict[int, View], dict[int, Value]]:
    """The views among `steps` (program Steps in run order), by id of the child, and the steps they make
    redundant: {index: the child whose copy it was}."""
    views: dict[int, View] = {}
    dropped: dict[int, Value] = {}
    for t, step in enumerate(steps):
        node, k = step.node, step.kernel
        if node.domain not in ("", "ai.onnx") or k.fusable is None or len(k.inputs) != 1 or len(k.outputs) != 1:
            continue
        x, y = k.inputs[0], k.outputs[0]
        if x.dtype != y.dtype or not (_placeable(x, pinned) and _placeable(y, pinned)):
            continue
        if node.op == "Concat" and _outer(node, y) == 1:
            child, parent, offset = x, y, k.fusable["out_offset"]
        elif node.op == "Split" and _outer(node, x) == 1:
            child, parent, offset = y, x, k.fusable["in_offsets"][0]
        elif node.op in RELAYOUT and x.size == y.size:
            child, parent, offset = y, x, 0
        else:
            continue
        if id(child) in views or id(child) in _ancestors(views, parent):  # one parent each; no cycle
            continue
        views[id(child)] = View(child, parent, offset * x.dtype.itemsize)
        dropped[t] = child
    return views, dropped


def _ancestors(views: dict[int, View], v: Value) -> set[int]:
    seen = {id(v)}
    while id(v) in views:
        v = views[id(v)].parent
        seen.add(id(v))
    return seen


def root_of(views: dict[int, View], v: Value) -> tuple[Value, int]:
    """The value at the root of v's tree, and v's byte offset in it."""
    offset = 0
    while id(v) in views:
        offset += views[id(v)].offset
        v = views[id(v)].parent
    return v, offset
