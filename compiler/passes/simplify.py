"""Algebraic simplification: rewrites that remove or shrink nodes and give bit-identical results.

A rule table per op (default domain only). A rule returns None (no match), a Value the node's output
equals (the node goes), or a Node to put in its place (rules then run again on that node):
  Identity; Dropout whose mask is unused (inference: the identity)      -> its input
  Reshape/Flatten/Squeeze/Unsqueeze to its input's shape               -> its input
  a reshape of a reshape                                               -> one Reshape of the first input
  Transpose: identity perm -> its input; of a Transpose -> one Transpose with the composed perm;
             moving only size-1 axes -> a Reshape (then the reshape rules apply)
  Cast/CastLike to its input's type                                    -> its input
  Cast of a Cast A->B->C where A->B is exact: C == A -> the input; B->C exact -> one Cast A->C
  x*1, 1*x, x/1, x+0, 0+x, x-0 (a constant all 1 or all 0) where the output has x's shape and type -> x
x + 0 turns -0.0 into +0.0, which compares equal; every other rule is exact bit for bit.
Shape and Size of a static tensor are not here: the importer evaluates them and fold_constants turns
them into constants.

A removed node's output that is a graph output keeps its name: the node producing the input takes the
output Value over (the input's old name goes). Where the input is a graph input, a constant or another
graph output, the node stays as it is. Nodes left without consumers by a rewrite are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir.dtypes import INT64, DType
from ..ir.graph import Graph, Node, Value

Rule = Callable[[Node, "_Rewriter"], "Value | Node | None"]

RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")
_MANTISSA_DIGITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53, "float4e2m1": 2}
_MANTISSA_DIGITS.update({"float8e4m3fn": 4, "float8e4m3fnuz": 4, "float8e5m2": 3, "float8e5m2fnuz": 3})
_MANTISSA_DIGITS["float8e8m0"] = 0  # powers of two only, no zero: no integer converts exactly
_WIDER_FLOATS = {"float16": ("float32", "float64"), "bfloat16": ("float32", "float64"), "float32": ("float64",)}
_WIDER_FLOATS.update(
    {f: ("float16", "bfloat16", "float32", "float64") for f in _MANTISSA_DIGITS if f[:6] in ("float8", "float4")}
)
_WIDER_FLOATS["float8e8m0"] = ("bfloat16", "float32", "float64")  # 2^-127 .. 2^127: beyond float16
_BITS = {"int4": 4, "uint4": 4, "int2": 2, "uint2": 2}  # stored one per byte


def exact_cast(a: DType, b: DType) -> bool:
    """Whether every value of type `a` converts to `b` exactly, so that converting back restores it."""
    if a == b:
        return True
    if "string" in (a.kind, b.kind):  # parsing and formatting
        return False
    if b.name == "float8e8m0":  # no zero, no sign
        return False
    if a.kind == "bool":
        return True
    if b.kind == "bool" or (a.kind == "float" and b.kind != "float"):
        return False
    if a.kind == "float":
        return b.name in _WIDER_FLOATS.get(a.name, ())
    bits_a, bits_b = _BITS.get(a.name, a.itemsize * 8), _BITS.get(b.name, b.itemsize * 8)
    magnitude_bits = bits_a - (a.kind == "int")
    if b.kind == "float":
        return magnitude_bits <= _MANTISSA_DIGITS[b.name]
    if a.kind == "uint":
        return bits_b > bits_a or (b.kind == "uint" and bits_b >= bits_a)
    return b.kind == "int" and bits_b >= bits_a


class _Rewriter:
    """State of one simplify run: substitutions, use counts and fresh names."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.subst: dict[int, Value] = {}
        self.outputs = {id(v) for v in graph.outputs}
        self.uses: dict[int, int] = {k: len(n) for k, n in graph.consumers().items()}
        for v in graph.outputs:
            self.uses[id(v)] = self.uses.get(id(v), 0) + 1
        self.taken = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
        self.taken |= {v.name for n in graph.nodes for v in [*n.inputs, *n.outputs] if v is not None}

    def resolve(self, v: Value | None) -> Value | None:
        while v is not None and id(v) in self.subst:
            v = self.subst[id(v)]
        return v

    def used(self, v: Value) -> bool:
        return self.uses.get(id(v), 0) > 0

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}.{k}", k + 1
        self.taken.add(name)
        return name

    def reshape(self, x: Value, node: Node) -> Node | None:
        """`node`'s output computed as one Reshape of `x` (same elements, same order), with an explicit shape."""
        out = node.outputs[0]
        if node.version < 5 or 0 in out.shape or x.dtype != out.dtype or x.size != out.size:
            return None
        shape = node.input(1) if node.op == "Reshape" else None
        if shape is None or shape.data is None or list(shape.data.reshape(-1)) != list(out.shape):
            shape = Value(self.fresh(f"{out.name}:shape"), INT64, (out.rank,), np.array(out.shape, np.int64))
        return Node("Reshape", [x, shape], node.outputs, {}, node.name, "", node.version)

    def forward(self, node: Node, src: Value) -> bool:
        """Make `node`'s first output `src` (its other outputs are unused); False where a name forbids it."""
        out = node.outputs[0]
        if out.dtype != src.dtype or out.shape != src.shape:
            return False
        if id(out) not in self.outputs:
            self.subst[id(out)] = src
            return True
        producer = src.producer
        if producer is None or id(src) in self.outputs:
            return False
        producer.outputs = [out if o is src else o for o in producer.outputs]
        out.producer = producer
        self.subst[id(src)] = out
        return True

    def rewrite(self, node: Node) -> Node | None:
        """Apply the rules to `node` until none matches: the node to keep, or None where it went away."""
        while True:
            node.inputs = [self.resolve(v) for v in node.inputs]
            rules = RULES.get(node.op, ()) if node.domain == "" else ()
            for rule in rules:
                result = rule(node, self)
                if isinstance(result, Value):
                    return None if self.forward(node, result) else node
                if result is not None:
                    for o in result.outputs:
                        o.producer = result
                    node = result
                    break
            else:
                return node


def _identity(node: Node, rw: _Rewriter) -> Value | None:
    return node.inputs[0]


def _dropout(node: Node, rw: _Rewriter) -> Value | None:
    mode = node.input(2)
    if (len(node.outputs) > 1 and rw.used(node.outputs[1])) or (
        mode is not None and (mode.data is None or mode.data.any())
    ):
        return None  # the mask is read, or the node may train
    return node.inputs[0]


def _same_shape(node: Node, rw: _Rewriter) -> Value | None:
    x = node.inputs[0]
    return x if x.shape == node.outputs[0].shape else None


def _reshape_of_reshape(node: Node, rw: _Rewriter) -> Node | None:
    inner = node.inputs[0].producer
    if inner is None or inner.op not in RESHAPES or inner.domain != "":
        return None
    return rw.reshape(inner.inputs[0], node)


def _perm(node: Node) -> list[int]:
    perm = node.attr("perm")
    return list(range(node.inputs[0].rank))[::-1] if perm is None else [int(p) for p in perm]


def _transpose_identity(node: Node, rw: _Rewriter) -> Value | None:
    return node.inputs[0] if _perm(node) == list(range(node.inputs[0].rank)) else None


def _transpose_of_transpose(node: Node, rw: _Rewriter) -> Node | None:
    inner = node.inputs[0].producer
    if inner is None or inner.op != "Transpose" or inner.domain != "":
        return None
    first = _perm(inner)
    perm = [first[p] for p in _perm(node)]
    return Node("Transpose", [inner.inputs[0]], node.outputs, {"perm": perm}, node.name, "", node.version)


def _transpose_as_reshape(node: Node, rw: _Rewriter) -> Node | None:
    x = node.inputs[0]
    moved = [p for p in _perm(node) if x.shape[p] != 1]
    return rw.reshape(x, node) if moved == sorted(moved) else None


def _same_type(node: Node, rw: _Rewriter) -> Value | None:
    x = node.inputs[0]
    return x if x.dtype == node.outputs[0].dtype else None


def _cast_of_cast(node: Node, rw: _Rewriter) -> Value | Node | None:
    inner = node.inputs[0].producer
    if inner is None or inner.op != "Cast" or inner.domain != "":
        return None
    x = inner.inputs[0]
    a, b, c = x.dtype, node.inputs[0].dtype, node.outputs[0].dtype
    if not exact_cast(a, b):
        return None
    if c == a:
        return x
    if exact_cast(b, c):
        return Node("Cast", [x], node.outputs, {**node.attrs, "to": c.onnx}, node.name, "", node.version)
    return None


def _neutral(element: int, sides: tuple[int, ...]) -> Rule:
    """x op c -> x where constant c is all `element`, at input position in `sides`, and nothing broadcasts."""

    def rule(node: Node, rw: _Rewriter) -> Value | None:
        if len(node.inputs) != 2 or None in node.inputs:
            return None
        out = node.outputs[0]
        for i in sides:
            c, x = node.inputs[i], node.inputs[1 - i]
            if c.data is None or not np.all(c.data == element):
                continue
            if x.shape == out.shape and x.dtype == out.dtype:
                return x
        return None

    return rule


RULES: dict[str, tuple[Rule, ...]] = {
    "Identity": (_identity,),
    "Dropout": (_dropout,),
    **{op: (_same_shape, _reshape_of_reshape) for op in RESHAPES},
    "Transpose": (_transpose_identity, _transpose_of_transpose, _transpose_as_reshape),
    "Cast": (_same_type, _cast_of_cast),
    "CastLike": (_same_type,),
    "Mul": (_neutral(1, (0, 1)),),
    "Div": (_neutral(1, (1,)),),
    "Add": (_neutral(0, (0, 1)),),
    "Sub": (_neutral(0, (1,)),),
}


def simplify(graph: Graph) -> Graph:
    """Apply the algebraic rewrites above in one pass over the nodes (in order, so chains collapse)."""
    rw = _Rewriter(graph)
    dead_before = {id(n) for n in graph.nodes if not any(rw.used(o) for o in n.outputs)}
    kept: list[Node] = []
    for node in graph.nodes:
        was_dead = id(node) in dead_before
        node = rw.rewrite(node)
        if node is not None:
            kept.append(node)
            if was_dead:
                dead_before.add(id(node))
    for node in kept:
        node.inputs = [rw.resolve(v) for v in node.inputs]
    graph.nodes = _drop_orphans(graph, kept, dead_before)
    return graph


def _drop_orphans(graph: Graph, nodes: list[Node], dead_before: set[int]) -> list[Node]:
    """Drop the nodes whose outputs lost every use in this pass (nodes that were dead before stay)."""
    uses: dict[int, int] = {}
    for v in [*graph.outputs, *(v for n in nodes for v in n.inputs if v is not None)]:
        uses[id(v)] = uses.get(id(v), 0) + 1
    kept = []
    for node in reversed(nodes):
        if id(node) not in dead_before and not any(uses.get(id(o), 0) for o in node.outputs):
            for v in node.inputs:
                if v is not None:
                    uses[id(v)] -= 1
            continue
        kept.append(node)
    return kept[::-1]
