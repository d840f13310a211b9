"""Canonicalisation: decomposed LayerNorm, GELU, SiLU/Swish, HardSwish and Softmax become the single ops.

Each rule starts at an anchor node (the one op the pattern cannot do without) and matches exactly:
constants by value (within RTOL), reduction axes and keepdims, and every intermediate value read by the
pattern alone and not a graph output. The replacement reuses the pattern's final value, so nothing
downstream changes; only float32 and float64 patterns are rewritten.

  LayerNormalization(x, gamma, beta, axis=k)  <- (x - m) / Sqrt(ReduceMean((x - m)^2) + eps) [* gamma] [+ beta],
                                                 m = ReduceMean(x), both over the trailing axes k..
  Gelu(x)                                     <- 0.5 * x * (1 + Erf(x / sqrt(2)))        (or x * (1 / sqrt(2)))
  Gelu(x, approximate="tanh")                 <- 0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
  Swish(x, alpha)                             <- x * Sigmoid(x) or x * Sigmoid(alpha * x)
  HardSwish(x)                                <- x * HardSigmoid(x, 1/6, 1/2) or x * Clip(x + 3, 0, 6) / 6
  Softmax(x, axis=a)                          <- Exp(x - ReduceMax(x, a)) / ReduceSum(Exp(..), a)

Products may be written in any association and order, with scalar factors as Mul or Div by a constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..ir.dtypes import FLOAT32, FLOAT64
from ..ir.graph import Graph, Node, Value
from .fold_batchnorm import FreshNames

RTOL = 1e-5  # float32 spellings of sqrt(2), sqrt(2/pi), 1/6 ... are within 1e-7; exporters' decimals within 1e-6
MATCH_TYPES = (FLOAT32, FLOAT64)
VERSIONS = {"LayerNormalization": 17, "Gelu": 20, "Swish": 24, "HardSwish": 14, "Softmax": 13}
_AXES_INPUT_SINCE = {"ReduceSum": 13}  # the other reductions take axes as an input from opset 18


@dataclass
class Match:
    root: Node  # the last node of the pattern; the replacement takes its place and its output
    op: str
    inputs: list[Value]
    dead: list[Node]  # the other nodes of the pattern
    attrs: dict
    domain: str = ""  # of the replacing op; its opset version is VERSIONS[op] in the default domain, else 1


def _scalar(v: Value | None) -> float | None:
    if v is None or not v.is_const or v.data.size != 1:
        return None
    return float(v.data.reshape(-1)[0])


def _is(value: float | None, target: float) -> bool:
    return value is not None and math.isclose(value, target, rel_tol=RTOL, abs_tol=0.0)


def split_scalar(node: Node) -> tuple[Value, float] | None:
    """(other operand, constant) for a binary node with one scalar constant operand."""
    if len(node.inputs) != 2 or any(v is None for v in node.inputs):
        return None
    a, b = node.inputs
    if _scalar(b) is not None and _scalar(a) is None:
        return a, _scalar(b)
    if _scalar(a) is not None and _scalar(b) is None and node.op in ("Add", "Mul"):
        return b, _scalar(a)
    return None


class Matcher:
    """Use counts and graph outputs of one sweep, and the pattern helpers that depend on them."""

    def __init__(self, graph: Graph):
        self.outputs = {id(v) for v in graph.outputs}
        self.users: dict[int, list[Node]] = {}
        for node in graph.nodes:
            for v in node.inputs:
                if v is not None and node not in self.users.setdefault(id(v), []):
                    self.users[id(v)].append(node)

    def inner(self, v: Value) -> bool:
        """v is computed in the graph, read by one node, and not a graph output."""
        return v.producer is not None and id(v) not in self.outputs and len(self.users.get(id(v), [])) == 1

    def made_by(self, v: Value | None, *ops: str) -> Node | None:
        """v's producer if it is one of `ops` (default domain) and v is an inner value."""
        if v is None or not self.inner(v) or v.producer.op not in ops or v.producer.domain != "":
            return None
        return v.producer

    def sole_user(self, v: Value) -> Node | None:
        return self.users[id(v)][0] if self.inner(v) else None

    def product(self, node: Node) -> tuple[list[Value], float, list[Node]] | None:
        """node (Mul, or Div by a scalar constant) as leaves * coefficient, expanding inner Mul/Div producers."""
        if node.op == "Div":
            c = _scalar(node.inputs[1])
            if c is None or c == 0 or _scalar(node.inputs[0]) is not None:
                return None
            operands, coeff = [node.inputs[0]], 1.0 / c
        elif node.op == "Mul":
            operands, coeff = list(node.inputs), 1.0
        else:
            return None
        leaves, nodes = [], [node]
        for v in operands:
            if _scalar(v) is not None:
                coeff *= _scalar(v)
                continue
            inner = self.made_by(v, "Mul", "Div")
            sub = self.product(inner) if inner is not None else None
            if sub is None:
                leaves.append(v)
                continue
            leaves += sub[0]
            coeff *= sub[1]
            nodes += sub[2]
        return leaves, coeff, nodes

    def product_root(self, start: Value, leaves: list[Value], coeff: float) -> tuple[Node, list[Node]] | None:
        """The Mul/Div chain from `start` whose whole product is exactly leaves * coeff: (root, its nodes)."""
        want = sorted(id(v) for v in leaves)
        current = start
        for _ in range(4):
            node = self.sole_user(current)
            if node is None or node.op not in ("Mul", "Div") or node.domain != "":
                return None
            if node.op == "Div" and node.inputs[0] is not current:
                return None
            found = self.product(node)
            if found is None:
                return None
            if sorted(id(v) for v in found[0]) == want and _is(found[1], coeff):
                return node, found[2][1:]
            current = node.outputs[0]
        return None

    def reduce_axes(self, node: Node, rank: int) -> list[int] | None:
        """The sorted axes of a keepdims reduction with explicit constant axes; None otherwise."""
        if node.attr("keepdims", 1) != 1:
            return None
        if node.version >= _AXES_INPUT_SINCE.get(node.op, 18):
            axes_value = node.input(1)
            if axes_value is None or not axes_value.is_const:
                return None
            axes = [int(a) for a in axes_value.data.reshape(-1)]
        else:
            axes = list(node.attr("axes", []) or [])
        normed = sorted({a + rank if a < 0 else a for a in axes})
        if not axes or len(normed) != len(axes) or not all(0 <= a < rank for a in normed):
            return None
        return normed


Rule = Callable[[Matcher, Node, FreshNames], Match | None]


def _float(x: Value) -> bool:
    return x.dtype in MATCH_TYPES and not x.dynamic_axes


def _finish(root: Node, x: Value, op: str, inputs: list[Value], dead: list[Node], attrs=None) -> Match | None:
    y = root.outputs[0]
    if y.dtype != x.dtype or y.shape != x.shape or not _float(x):
        return None
    return Match(root, op, inputs, dead, attrs or {})


def _trailing_param(m: Matcher, v: Value, x: Value, axis: int, op: str) -> tuple[Node, np.ndarray] | None:
    """(node, constant) for `v`'s sole user `op`(v, c) with c broadcasting over x's axes axis.. only."""
    node = m.sole_user(v)
    if node is None or node.op != op or node.domain != "" or len(node.inputs) != 2:
        return None
    c = node.inputs[1] if node.inputs[0] is v else node.inputs[0]
    if not c.is_const or c.rank > x.rank or c.dtype != x.dtype:
        return None
    padded = (1,) * (x.rank - c.rank) + c.shape
    if any(d != 1 for d in padded[:axis]) or any(d not in (1, e) for d, e in zip(padded[axis:], x.shape[axis:])):
        return None
    return node, np.broadcast_to(c.data.reshape(padded[axis:]), x.shape[axis:]).copy()


def layer_norm(m: Matcher, div: Node, names: FreshNames) -> Match | None:
    d, s = div.inputs
    sqrt = m.made_by(s, "Sqrt")
    add_eps = m.made_by(sqrt.inputs[0], "Add") if sqrt else None
    split = split_scalar(add_eps) if add_eps else None
    var = m.made_by(split[0], "ReduceMean") if split else None
    sq = m.made_by(var.inputs[0], "Pow", "Mul") if var else None
    sub = d.producer
    if sq is None or sub is None or sub.op != "Sub" or sub.domain != "" or id(d) in m.outputs:
        return None
    if sq.inputs[0] is not d or (sq.op == "Pow" and not _is(_scalar(sq.input(1)), 2.0)):
        return None
    if sq.op == "Mul" and sq.inputs[1] is not d or {id(n) for n in m.users[id(d)]} != {id(sq), id(div)}:
        return None
    x, mean = sub.inputs
    reduce_mean = m.made_by(mean, "ReduceMean")
    if reduce_mean is None or reduce_mean.inputs[0] is not x:
        return None
    axes = m.reduce_axes(reduce_mean, x.rank)
    if axes is None or axes != m.reduce_axes(var, x.rank) or axes != list(range(axes[0], x.rank)):
        return None
    axis, dims = axes[0], x.shape[axes[0] :]
    root, dead = div, [reduce_mean, sub, sq, var, add_eps, sqrt]
    scale, bias = np.ones(dims, x.dtype.np), None
    gamma = _trailing_param(m, div.outputs[0], x, axis, "Mul")
    if gamma is not None:
        dead.append(root)
        root, scale = gamma
    beta = _trailing_param(m, root.outputs[0], x, axis, "Add")
    if beta is not None:
        dead.append(root)
        root, bias = beta
    inputs = [x, Value(names(x.name, "ln_scale"), x.dtype, dims, scale)]
    if bias is not None:
        inputs.append(Value(names(x.name, "ln_bias"), x.dtype, dims, bias))
    return _finish(root, x, "LayerNormalization", inputs, dead, {"axis": axis, "epsilon": split[1]})


def softmax(m: Matcher, div: Node, names: FreshNames) -> Match | None:
    e, s = div.inputs
    reduce_sum = m.made_by(s, "ReduceSum")
    exp = e.producer
    if reduce_sum is None or exp is None or exp.op != "Exp" or exp.domain != "" or id(e) in m.outputs:
        return None
    if reduce_sum.inputs[0] is not e or {id(n) for n in m.users[id(e)]} != {id(reduce_sum), id(div)}:
        return None
    sub = m.made_by(exp.inputs[0], "Sub")
    reduce_max = m.made_by(sub.inputs[1], "ReduceMax") if sub else None
    if reduce_max is None or reduce_max.inputs[0] is not sub.inputs[0]:
        return None
    x = sub.inputs[0]
    axes = m.reduce_axes(reduce_max, x.rank)
    if axes is None or len(axes) != 1 or axes != m.reduce_axes(reduce_sum, x.rank):
        return None
    return _finish(div, x, "Softmax", [x], [reduce_max, sub, exp, reduce_sum], {"axis": axes[0]})


def _plus_one(m: Matcher, v: Value) -> Node | None:
    """v's sole user if it is v + 1."""
    add = m.sole_user(v)
    if add is None or add.op != "Add" or add.domain != "":
        return None
    split = split_scalar(add)
    return add if split is not None and split[0] is v and _is(split[1], 1.0) else None


def _half_x_times(m: Matcher, x: Value, a: Node, dead: list[Node], op: str, attrs: dict) -> Match | None:
    """Completes a GELU: the product 0.5 * x * a."""
    found = m.product_root(a.outputs[0], [x, a.outputs[0]], 0.5)
    if found is None:
        return None
    root, chain = found
    return _finish(root, x, op, [x], dead + [a] + chain, attrs)


def gelu_erf(m: Matcher, erf: Node, names: FreshNames) -> Match | None:
    scaled = m.made_by(erf.inputs[0], "Div", "Mul")
    split = split_scalar(scaled) if scaled else None
    if split is None:
        return None
    x, c = split
    if not (_is(c, math.sqrt(2.0)) if scaled.op == "Div" else _is(c, math.sqrt(0.5))):
        return None
    a = _plus_one(m, erf.outputs[0])
    return _half_x_times(m, x, a, [scaled, erf], "Gelu", {}) if a else None


def _cubic_term(m: Matcher, v: Value, x: Value) -> list[Node] | None:
    """The nodes of v = 0.044715 * x^3 (x*x*x or Pow(x, 3), in any association)."""
    node = m.made_by(v, "Mul", "Div")
    found = m.product(node) if node else None
    if found is None or not _is(found[1], 0.044715):
        return None
    leaves, _, nodes = found
    if len(leaves) == 3 and all(leaf is x for leaf in leaves):
        return nodes
    cube = m.made_by(leaves[0], "Pow") if len(leaves) == 1 else None
    if cube is None or cube.inputs[0] is not x or not _is(_scalar(cube.input(1)), 3.0):
        return None
    return nodes + [cube]


def gelu_tanh(m: Matcher, tanh: Node, names: FreshNames) -> Match | None:
    scaled = m.made_by(tanh.inputs[0], "Mul")
    split = split_scalar(scaled) if scaled else None
    inner_sum = m.made_by(split[0], "Add") if split and _is(split[1], math.sqrt(2.0 / math.pi)) else None
    if inner_sum is None:
        return None
    for x, term in (inner_sum.inputs, inner_sum.inputs[::-1]):
        cubic = _cubic_term(m, term, x)
        a = _plus_one(m, tanh.outputs[0])
        if cubic is not None and a is not None:
            dead = cubic + [inner_sum, scaled, tanh]
            return _half_x_times(m, x, a, dead, "Gelu", {"approximate": "tanh"})
    return None


def swish(m: Matcher, sigmoid: Node, names: FreshNames) -> Match | None:
    v = sigmoid.inputs[0]
    scaled = m.made_by(v, "Mul")
    split = split_scalar(scaled) if scaled else None
    x, alpha, dead = (split[0], split[1], [scaled, sigmoid]) if split else (v, 1.0, [sigmoid])
    found = m.product_root(sigmoid.outputs[0], [x, sigmoid.outputs[0]], 1.0)
    if found is None:
        return None
    root, chain = found
    return _finish(root, x, "Swish", [x], dead + chain, {} if alpha == 1.0 else {"alpha": alpha})


def hard_swish_sigmoid(m: Matcher, hs: Node, names: FreshNames) -> Match | None:
    if not (_is(hs.attr("alpha", 0.2), 1 / 6) and _is(hs.attr("beta", 0.5), 0.5)):
        return None
    x = hs.inputs[0]
    found = m.product_root(hs.outputs[0], [x, hs.outputs[0]], 1.0)
    return _finish(found[0], x, "HardSwish", [x], [hs] + found[1]) if found else None


def hard_swish_clip(m: Matcher, clip: Node, names: FreshNames) -> Match | None:
    if clip.version < 11:
        lo, hi = clip.attr("min"), clip.attr("max")
    else:
        lo, hi = _scalar(clip.input(1)), _scalar(clip.input(2))
    shifted = m.made_by(clip.inputs[0], "Add")
    split = split_scalar(shifted) if shifted else None
    if split is None or not (_is(split[1], 3.0) and lo == 0.0 and _is(hi, 6.0)):
        return None
    x = split[0]
    found = m.product_root(clip.outputs[0], [x, clip.outputs[0]], 1 / 6)
    return _finish(found[0], x, "HardSwish", [x], [shifted, clip] + found[1]) if found else None


RULES: dict[str, list[Rule]] = {
    "Div": [layer_norm, softmax],
    "Erf": [gelu_erf],
    "Tanh": [gelu_tanh],
    "Sigmoid": [swish],
    "HardSigmoid": [hard_swish_sigmoid],
    "Clip": [hard_swish_clip],
}


def sweep(graph: Graph, names: FreshNames, rules: dict[str, list[Rule]]) -> bool:
    """One pass of `rules` (anchor op -> rules tried in order) over the graph; whether anything matched."""
    m = Matcher(graph)
    replaced: dict[int, Node] = {}
    removed: set[int] = set()
    for anchor in graph.nodes:
        if anchor.domain != "" or id(anchor) in removed:
            continue
        for rule in rules.get(anchor.op, []):
            match = rule(m, anchor, names)
            pattern = {id(n) for n in [match.root, *match.dead]} if match else set()
            if match is None or pattern & (removed | set(replaced)):
                continue
            y = match.root.outputs[0]
            version = VERSIONS[match.op] if match.domain == "" else 1
            node = Node(match.op, match.inputs, [y], match.attrs, match.root.name, match.domain, version)
            y.producer = node
            replaced[id(match.root)] = node
            removed |= {id(n) for n in match.dead}
            break
    graph.nodes = [replaced.get(id(n), n) for n in graph.nodes if id(n) not in removed]
    return bool(replaced)


def recognize(graph: Graph) -> Graph:
    """Replace every exactly matched decomposed LayerNorm, GELU, Swish, HardSwish and Softmax by its op."""
    names = FreshNames(graph)
    while sweep(graph, names, RULES):
        pass
    return graph
