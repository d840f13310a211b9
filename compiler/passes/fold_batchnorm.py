"""Canonicalisation: per-channel affine maps folded into the op that produces their input, and MatMul + Add.

A per-channel affine map y = x * s + t (s, t constant vectors over axis 1, the output channel) is an
inference BatchNormalization with constant parameters, or a Mul / Add / Sub(x, c) by a constant that
varies along axis 1 only. When its input is the single-use result of
  Conv (constant W, optional constant B)  ->  W[m] *= s[m], B = B * s + t
  Gemm (constant B, optional constant C)  ->  B's columns *= s, C = beta * C * s + t, beta = 1
  inference BatchNormalization            ->  scale *= s, B = B * s + t
the map disappears into it. MatMul(A, constant 2-D B) followed by Add(constant bias along the last axis)
becomes Gemm(A, B, bias) for 2-D A and MatMulBias (domain "mlcc", ops/matmul_bias.py) otherwise.

Folded constants are computed in float64 and rounded once; only float32 and float64 are folded (float16
weights would round the folded product, where the unfolded graph computes in float32).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import FLOAT32, FLOAT64
from ..ir.graph import Graph, Node, Value

FOLDABLE_TYPES = (FLOAT32, FLOAT64)
GEMM_VERSION = 13
MATMUL_BIAS_DOMAIN = "mlcc"


class FreshNames:
    """Collision-free names for new values: `base:suffix`, then `base:suffix.1`, ..."""

    def __init__(self, graph: Graph):
        self.taken = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
        self.taken |= {v.name for n in graph.nodes for v in [*n.inputs, *n.outputs] if v is not None}
        self.created: set[str] = set()

    def __call__(self, base: str, suffix: str) -> str:
        name, k = f"{base}:{suffix}", 1
        while name in self.taken:
            name, k = f"{base}:{suffix}.{k}", k + 1
        self.taken.add(name)
        self.created.add(name)
        return name


def use_counts(graph: Graph) -> dict[int, int]:
    """id(value) -> number of nodes reading it (a node reading it twice counts once)."""
    counts: dict[int, int] = {}
    for node in graph.nodes:
        for key in {id(v) for v in node.inputs if v is not None}:
            counts[key] = counts.get(key, 0) + 1
    return counts


def channel_vector(c: Value, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """`c` as a float64 vector over `axis` of `shape`, if it broadcasts to `shape` along that axis only."""
    if not c.is_const or c.rank > len(shape):
        return None
    padded = (1,) * (len(shape) - c.rank) + c.shape
    if any(d != 1 for i, d in enumerate(padded) if i != axis) or padded[axis] not in (1, shape[axis]):
        return None
    return np.broadcast_to(c.data.astype(np.float64).reshape(-1), (shape[axis],))


def _const_operand(node: Node) -> tuple[Value, Value] | None:
    """(x, c) for a binary node with exactly one constant operand."""
    if len(node.inputs) != 2 or any(v is None for v in node.inputs):
        return None
    a, b = node.inputs
    if b.is_const and not a.is_const:
        return a, b
    if a.is_const and not b.is_const and node.op != "Sub":
        return b, a
    return None


def _is_inference_bn(node: Node) -> bool:
    return (
        node.op == "BatchNormalization"
        and node.domain == ""
        and not (node.version >= 14 and node.attr("training_mode", 0))
        and len(node.outputs) == 1
        and len(node.inputs) >= 5
        and all(v is not None and v.is_const for v in node.inputs[1:5])
    )


def channel_affine(node: Node) -> tuple[Value, np.ndarray, np.ndarray] | None:
    """(x, s, t) where node computes x * s + t per channel (axis 1), s and t float64 vectors."""
    y = node.outputs[0] if node.outputs else None
    if y is None or y.dtype not in FOLDABLE_TYPES or y.rank < 2 or node.domain != "":
        return None
    if _is_inference_bn(node):
        x = node.inputs[0]
        scale, bias, mean, var = (v.data.astype(np.float64) for v in node.inputs[1:5])
        s = scale / np.sqrt(var + np.float64(np.float32(node.attr("epsilon", 1e-5))))
        return x, s, bias - mean * s
    if node.op not in ("Mul", "Add", "Sub"):
        return None
    pair = _const_operand(node)
    if pair is None:
        return None
    x, c = pair
    if x.dtype != y.dtype or x.shape != y.shape:
        return None
    vec = channel_vector(c, y.shape, 1)
    if vec is None:
        return None
    ones, zeros = np.ones_like(vec), np.zeros_like(vec)
    return (x, vec, zeros) if node.op == "Mul" else (x, ones, vec if node.op == "Add" else -vec)


def _new_const(names: FreshNames, old: Value | None, like: Value, suffix: str, data: np.ndarray) -> Value:
    """The constant replacing `old` (None: a new input), named after `like`, with like's dtype. It keeps
    old's name where this pass made `old` (folded again: nothing else reads it)."""
    name = old.name if old is not None and old.name in names.created else names(like.name, suffix)
    return Value(name, like.dtype, data.shape, data.astype(like.dtype.np))


def _fold_into_conv(node: Node, s: np.ndarray, t: np.ndarray, names: FreshNames) -> bool:
    w, b = node.inputs[1], node.input(2)
    if not w.is_const or (b is not None and not b.is_const) or w.dtype not in FOLDABLE_TYPES:
        return False
    scaled = w.data.astype(np.float64) * s.reshape((-1,) + (1,) * (w.rank - 1))
    node.inputs[1] = _new_const(names, w, w, "folded", scaled)
    if b is None and not t.any():
        return True
    bias = (0.0 if b is None else b.data.astype(np.float64)) * s + t
    node.inputs[2:] = [_new_const(names, b, b if b is not None else w, "folded_bias", bias)]
    return True


def _fold_into_gemm(node: Node, s: np.ndarray, t: np.ndarray, names: FreshNames) -> bool:
    b, c = node.inputs[1], node.input(2)
    if not b.is_const or (c is not None and not c.is_const) or b.dtype not in FOLDABLE_TYPES:
        return False
    cols = s.reshape(-1, 1) if node.attr("transB", 0) else s.reshape(1, -1)
    node.inputs[1] = _new_const(names, b, b, "folded", b.data.astype(np.float64) * cols)
    if c is None and not t.any():
        return True
    beta = float(node.attr("beta", 1.0)) if c is not None else 0.0
    bias = (0.0 if c is None else beta * c.data.astype(np.float64)) * s + t
    node.inputs[2:] = [_new_const(names, c, c if c is not None else b, "folded_bias", bias)]
    node.attrs.pop("beta", None)
    return True


def _fold_into_bn(node: Node, s: np.ndarray, t: np.ndarray, names: FreshNames) -> bool:
    scale, bias = node.inputs[1], node.inputs[2]
    node.inputs[1] = _new_const(names, scale, scale, "folded", scale.data.astype(np.float64) * s)
    node.inputs[2] = _new_const(names, bias, bias, "folded", bias.data.astype(np.float64) * s + t)
    return True


def _fold_affine(node: Node, s: np.ndarray, t: np.ndarray, names: FreshNames) -> bool:
    if node.domain != "" or len(node.outputs) != 1:
        return False
    if node.op == "Conv":
        return _fold_into_conv(node, s, t, names)
    if node.op == "Gemm":
        return _fold_into_gemm(node, s, t, names)
    if _is_inference_bn(node) and node.outputs[0].dtype in FOLDABLE_TYPES:
        return _fold_into_bn(node, s, t, names)
    return False


def _matmul_bias(node: Node, names: FreshNames, single_use) -> tuple[Node, Node] | None:
    """(MatMul, the Gemm / MatMulBias replacing MatMul -> node, an Add of a bias along the last axis), or None."""
    if node.op != "Add" or node.domain != "":
        return None
    pair = _const_operand(node)
    if pair is None:
        return None
    x, c = pair
    mm, y = x.producer, node.outputs[0]
    if mm is None or mm.op != "MatMul" or mm.domain != "" or not single_use(x):
        return None
    a, b = mm.inputs
    if not b.is_const or b.rank != 2 or a.rank < 2 or y.dtype not in FOLDABLE_TYPES or x.shape != y.shape:
        return None
    vec = channel_vector(c, y.shape, y.rank - 1)
    if vec is None:
        return None
    bias = c if c.shape == (y.shape[-1],) else _new_const(names, None, c, "bias", vec)
    if a.rank == 2:
        fused = Node("Gemm", [a, b, bias], [y], name=node.name or mm.name, version=GEMM_VERSION)
    else:
        fused = Node("MatMulBias", [a, b, bias], [y], name=node.name or mm.name, domain=MATMUL_BIAS_DOMAIN, version=1)
    y.producer = fused
    return mm, fused


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold per-channel affine maps into Conv/Gemm/BatchNormalization; MatMul + bias Add into one op."""
    names = FreshNames(graph)
    outputs = {id(v) for v in graph.outputs}
    uses = use_counts(graph)

    def single_use(v: Value) -> bool:
        return uses.get(id(v), 0) == 1 and id(v) not in outputs

    removed: set[int] = set()
    replaced: dict[int, Node] = {}
    for node in graph.nodes:
        affine = channel_affine(node)
        if affine is not None:
            x, s, t = affine
            producer = x.producer
            if producer is not None and single_use(x) and _fold_affine(producer, s, t, names):
                producer.outputs[0] = node.outputs[0]
                node.outputs[0].producer = producer
                removed.add(id(node))
                continue
        matched = _matmul_bias(node, names, single_use)
        if matched is not None:
            removed.add(id(matched[0]))
            replaced[id(node)] = matched[1]
    graph.nodes = [replaced.get(id(n), n) for n in graph.nodes if id(n) not in removed]
    return graph
