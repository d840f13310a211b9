"""Constant folding: a node whose outputs are all known at compile time becomes constants."""

from __future__ import annotations

from ..ir.graph import Graph

DEFAULT_LIMIT_BYTES = 1 << 62  # no cap by default: weights built in-graph (ConstantOfShape) must fold


def fold_constants(graph: Graph, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> Graph:
    """Replace nodes whose every output has a compile-time value, unless an output exceeds `limit_bytes`."""
    kept = []
    for node in graph.nodes:
        outs = [o for o in node.outputs]
        if outs and all(o.data is not None and o.nbytes <= limit_bytes for o in outs):
            for o in outs:
                o.producer = None
            continue
        kept.append(node)
    graph.nodes = kept
    return graph
