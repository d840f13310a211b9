"""IR invariants: SSA, definition before use, outputs defined, producers consistent."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InternalError
from .graph import Graph, Node, Value

ShapeCheck = Callable[[Node], list[tuple]]


def verify(graph: Graph, infer: ShapeCheck | None = None) -> None:
    """Raise InternalError naming the first broken invariant. `infer` re-derives (dtype, shape) per node."""
    defined: set[int] = {id(v) for v in graph.inputs}
    for v in graph.inputs:
        if v.producer is not None:
            raise InternalError(f"graph input {v.name!r} has a producer")
    for node in graph.nodes:
        for v in node.inputs:
            if v is None or v.is_const:
                continue
            if id(v) not in defined:
                raise InternalError(f"node {node.op} {node.name!r} uses {v.name!r} before it is defined")
        for o in node.outputs:
            if id(o) in defined:
                raise InternalError(f"value {o.name!r} is defined twice")
            if o.producer is not node:
                raise InternalError(f"value {o.name!r} does not name its producer {node.op}")
            defined.add(id(o))
        if infer is not None:
            expected = infer(node)
            for o, (dtype, shape) in zip(node.outputs, expected):
                same = len(o.shape) == len(shape) and all(  # a data-dependent axis may carry --output-bound's bound
                    a in o.dynamic_axes or d == e for a, (d, e) in enumerate(zip(o.shape, shape))
                )
                if o.dtype != dtype or not same:
                    raise InternalError(
                        f"{node.op} {node.name!r}: output {o.name!r} is {o.dtype}{list(o.shape)}, "
                        f"inference says {dtype}{list(shape)}"
                    )
    for v in graph.outputs:
        if not (v.is_const or id(v) in defined):
            raise InternalError(f"graph output {v.name!r} is never defined")


def check_value(v: Value) -> None:
    if any(d < 0 for d in v.shape):
        raise InternalError(f"value {v.name!r} has a negative dim {list(v.shape)}")
