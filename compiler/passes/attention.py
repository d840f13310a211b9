"""Canonicalisation (c target): scaled-dot-product attention becomes one ScaledDotProductAttention op.

  ScaledDotProductAttention(Q, KT, V[, mask], scale=c * a * b)
      <- MatMul(Softmax(MatMul(Q * a, KT * b) * c [+ mask], axis=-1), V)

with each scalar factor (a, b, c) optional and written as Mul or Div by a constant, the mask added in
either operand order, every intermediate read by the pattern alone, and everything float32. KT is K already
transposed, as the pattern has it: the op reads it as the B operand of Q @ KT (compiler/ops/attention.py).
Runs after recognize() (which makes the Softmax of a decomposed one). The cuda target has no attention
kernel yet, so its pipeline does not list this pass and runs the pattern as MatMul, Softmax, MatMul.
"""

from __future__ import annotations

from functools import partial

from ..cpu import CpuTarget
from ..errors import MlccError
from ..ir.dtypes import FLOAT32
from ..ir.graph import Graph, Node, Value
from ..ops.attention import ATTENTION_DOMAIN
from ..ops.common import norm_axis
from ..ops.registry import infer_node
from .fold_batchnorm import FreshNames
from .recognize import Match, Matcher, split_scalar, sweep


def _scaled(m: Matcher, v: Value) -> tuple[Value, float, list[Node]]:
    """(x, c, [node]) where v = x * c or x / c for a scalar constant c, else (v, 1, [])."""
    node = m.made_by(v, "Mul", "Div")
    split = split_scalar(node) if node is not None else None
    if split is None or split[1] == 0:
        return v, 1.0, []
    x, c = split
    return x, (1.0 / c if node.op == "Div" else c), [node]


def _scores(m: Matcher, v: Value) -> tuple[Value, Value, float, list[Node]] | None:
    """(Q, KT, scale, nodes) where v = (Q @ KT) * scale, factors on either operand or the product."""
    s, c, nodes = _scaled(m, v)
    matmul = m.made_by(s, "MatMul")
    if matmul is None:
        return None
    q, a, on_q = _scaled(m, matmul.inputs[0])
    kt, b, on_k = _scaled(m, matmul.inputs[1])
    return q, kt, c * a * b, nodes + [matmul] + on_q + on_k


def attention(m: Matcher, softmax: Node, names: FreshNames, cpu: CpuTarget) -> Match | None:
    x, p = softmax.inputs[0], softmax.outputs[0]
    if x.dtype != FLOAT32 or x.rank < 2 or x.dynamic_axes:
        return None
    try:
        axis = norm_axis(softmax, softmax.attr("axis", -1 if softmax.version >= 13 else 1), x.rank)
    except MlccError:
        return None
    pv = m.sole_user(p)
    if axis != x.rank - 1 or pv is None or pv.op != "MatMul" or pv.domain != "" or pv.inputs[0] is not p:
        return None
    found, mask, dead = _scores(m, x), None, [softmax]
    add = m.made_by(x, "Add") if found is None else None
    for scores, other in (add.inputs, add.inputs[::-1]) if add is not None else ():
        found = _scores(m, scores)
        if found is not None:
            mask, dead = other, dead + [add]
            break
    if found is None:
        return None
    q, kt, scale, nodes = found
    v, y = pv.inputs[1], pv.outputs[0]
    inputs = [q, kt, v] + ([mask] if mask is not None else [])
    if any(i.dtype != FLOAT32 or i.dynamic_axes for i in inputs):
        return None
    attrs = {"scale": scale, "mr": cpu.mr, "nr": cpu.nr}
    probe = Node("ScaledDotProductAttention", inputs, [Value(y.name, y.dtype, y.shape)], attrs, pv.name,
                 ATTENTION_DOMAIN, 1)  # fmt: skip
    try:
        if infer_node(probe) != [(FLOAT32, y.shape)]:
            return None
    except MlccError:
        return None
    return Match(pv, "ScaledDotProductAttention", inputs, dead + nodes, attrs, ATTENTION_DOMAIN)


def recognize_attention(graph: Graph, cpu: CpuTarget) -> Graph:
    """Replace every exactly matched scaled-dot-product attention by one ScaledDotProductAttention."""
    names = FreshNames(graph)
    while sweep(graph, names, {"Softmax": [partial(attention, cpu=cpu)]}):
        pass
    return graph
