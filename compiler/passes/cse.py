"""Common-subexpression elimination: equal constants become one, equal nodes become one.

Two constants are equal when their dtype, shape and bytes are. Two nodes are equal when their op, domain,
opset version, attributes (tensors compared by dtype, shape and bytes; floats bit for bit) and input
Values are, and their outputs have the same types (Add and Mul match with their two inputs swapped).
Ops are pure at inference; the random generators are listed anyway so that two draws never merge.

The first node stays and the duplicate's consumers read its outputs. A graph output keeps its name:
where the duplicate's output is one (or the first leaves that optional output unnamed), the first
node takes that Value over; where both are graph outputs, the duplicate stays. Graph outputs that are constants are left as they are.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..ir.graph import Graph, Node, Value

NONDETERMINISTIC = {
    "Bernoulli",
    "Multinomial",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
}
COMMUTATIVE = {"Add", "Mul"}  # from opset 7 (numpy broadcasting is symmetric; IEEE + and * commute)


def _raw(data: np.ndarray) -> np.ndarray:
    if data.dtype == object:  # strings: each one's length and UTF-8 bytes
        parts = (s.encode("utf-8", "surrogateescape") for s in data.reshape(-1))
        return np.frombuffer(b"".join(len(b).to_bytes(8, "little") + b for b in parts), np.uint8)
    return np.ascontiguousarray(data).reshape(-1).view(np.uint8)


def _tensor_key(data: np.ndarray) -> tuple:
    return ("tensor", data.dtype.name, data.dtype.str, data.shape, hashlib.blake2b(_raw(data)).digest())


def attr_key(value: Any) -> tuple:
    """A hashable key equal for two attribute values exactly when they mean the same."""
    if isinstance(value, np.ndarray):
        return _tensor_key(value)
    if isinstance(value, np.generic):
        return _tensor_key(np.asarray(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, (str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(attr_key(x) for x in value))
    return ("object", id(value))  # unknown kinds never compare equal


class _Constants:
    """Canonical constant per (dtype, shape, bytes)."""

    def __init__(self) -> None:
        self.buckets: dict[tuple, list[Value]] = {}
        self.known: dict[int, Value] = {}

    def canonical(self, v: Value) -> Value:
        if id(v) not in self.known:
            data = v.data
            assert data is not None
            bucket = self.buckets.setdefault((v.dtype.name, _tensor_key(data)), [])
            same = [c for c in bucket if np.array_equal(_raw(c.data), _raw(data))]
            if not same:
                bucket.append(v)
            self.known[id(v)] = same[0] if same else v
        return self.known[id(v)]


def _node_key(node: Node) -> tuple:
    ins = tuple(None if v is None else id(v) for v in node.inputs)
    if node.op in COMMUTATIVE and node.domain == "" and node.version >= 7 and len(ins) == 2 and None not in ins:
        ins = tuple(sorted(ins))
    attrs = tuple(sorted((k, attr_key(v)) for k, v in node.attrs.items()))
    outs = tuple((o.dtype.name, o.shape, o.dynamic_axes) for o in node.outputs)
    return (node.op, node.domain, node.version, ins, attrs, outs)


def _merge(first: Node, dup: Node, graph_outputs: set[int], subst: dict[int, Value]) -> bool:
    """Let `first` stand for `dup`; False where both give a graph output at the same position."""
    pairs = list(zip(first.outputs, dup.outputs))
    if any(id(a) in graph_outputs and id(b) in graph_outputs for a, b in pairs):
        return False
    for i, (a, b) in enumerate(pairs):
        if id(b) in graph_outputs or (b.name and not a.name):  # keep b's name; `first` now defines b
            first.outputs[i], b.producer = b, first
            subst[id(a)] = b
        else:
            subst[id(b)] = a
    return True


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    """Merge equal constants, then equal nodes, in one pass in node order."""
    subst: dict[int, Value] = {}
    graph_outputs = {id(v) for v in graph.outputs}
    constants = _Constants()

    def resolve(v: Value | None) -> Value | None:
        while v is not None and id(v) in subst:
            v = subst[id(v)]
        if v is not None and v.is_const:
            return constants.canonical(v)
        return v

    seen: dict[tuple, Node] = {}
    kept: list[Node] = []
    for node in graph.nodes:
        node.inputs = [resolve(v) for v in node.inputs]
        if node.op not in NONDETERMINISTIC:
            key = _node_key(node)
            first = seen.get(key)
            if first is not None and _merge(first, node, graph_outputs, subst):
                continue
            seen.setdefault(key, node)
        kept.append(node)
    for node in kept:
        node.inputs = [resolve(v) for v in node.inputs]
    graph.nodes = kept
    return graph
