"""TreeEnsemble (ai.onnx.ml opset 5) on the "tree_ensemble" kernel family, one work item per row of X [N, F].

The trees are attributes, so they become constant C tables (per node: feature, mode, split, missing-value
direction and two children; per leaf: weight and target) and each row walks every tree from its root to a
leaf. A child is a node index (>= 0) or a leaf as -1 - leaf. The structure is checked at compile time (indices
in range, features inside X's row, no cycles), so a walk always ends at a leaf without reading outside a table;
nodes_hitrates (a performance hint) is ignored.

Node modes: BRANCH_LEQ, LT, GTE, GT, EQ, NEQ compare the feature with the split; BRANCH_MEMBER tests
membership in the node's set, the NaN-delimited groups of membership_values taken in node order. A NaN
feature follows the true branch where nodes_missing_value_tracks_true says so (else the comparison decides).
Leaves add to (SUM, AVERAGE) or bound (MIN, MAX) their target's score in X's element type, tree by tree;
AVERAGE divides the sum by the number of trees at the end, and a target that no leaf reached scores 0 under
MIN/MAX, as onnxruntime does. post_transform uses the spec's codes (NONE 0, SOFTMAX 1, LOGISTIC 2,
SOFTMAX_ZERO 3, PROBIT 4) on every row, whatever the number of targets; PROBIT uses the erfinv approximation
of onnxruntime and onnx's reference. (onnxruntime 1.32 reads codes 1 and 2 the other way round and skips
SOFTMAX and LOGISTIC for a single target.) float16 computes in float32 (passes/legalize_types.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64, UINT8, DType
from ..ir.graph import Node, Value
from .common import c_literal, cmath, need_input, require_c
from .ml_basic import ML_DOMAIN
from .registry import Kernel, OpDef, register

AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")
TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
MEMBER = 6  # BRANCH_MEMBER; 0..5 are LEQ, LT, GTE, GT, EQ, NEQ
MAX_INDEX = 2**31 - 1  # node, leaf and feature indices are int32 in the tables


@dataclass
class Forest:
    roots: list[int]  # a child code per tree: a node index, or -1 - leaf for a tree that is one leaf
    feature: list[int]
    mode: list[int]
    split: np.ndarray
    missing: list[int]  # 1: a NaN feature takes the true branch
    true_child: list[int]
    false_child: list[int]
    member_start: list[int]  # BRANCH_MEMBER nodes: their set is members[start:end]
    member_end: list[int]
    members: np.ndarray
    leaf_weight: np.ndarray
    leaf_target: list[int]
    n_targets: int
    aggregate: str
    transform: str


def _ints(node: Node, name: str, required: bool = True) -> list[int] | None:
    value = node.attr(name)
    if value is None:
        if required:
            raise ModelError(f"TreeEnsemble {node.name!r}: attribute {name} is required")
        return None
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _floats(node: Node, name: str, required: bool = True) -> np.ndarray | None:
    value = node.attr(name)
    if value is None:
        if required:
            raise ModelError(f"TreeEnsemble {node.name!r}: attribute {name} is required")
        return None
    data = np.asarray(value)
    if data.dtype.kind != "f":
        raise ModelError(f"TreeEnsemble {node.name!r}: attribute {name} must be a float tensor, got {data.dtype}")
    return data.astype(np.float64).reshape(-1)


def _member_sets(node: Node, modes: list[int]) -> tuple[list[int], list[int], np.ndarray]:
    """Each node's slice of the membership values (empty for the other modes), groups taken in node order."""
    n_sets = sum(m == MEMBER for m in modes)
    values = _floats(node, "membership_values", required=False)
    if values is None:
        if n_sets:
            raise ModelError(f"TreeEnsemble {node.name!r}: BRANCH_MEMBER nodes need the membership_values attribute")
        return [0] * len(modes), [0] * len(modes), np.zeros(0)
    bounds, start = [], 0
    for i, v in enumerate(values):
        if np.isnan(v):
            bounds.append((start, i))
            start = i + 1
    if start < len(values):  # the last set may end without a NaN
        bounds.append((start, len(values)))
    if len(bounds) != n_sets:
        raise ModelError(
            f"TreeEnsemble {node.name!r}: membership_values holds {len(bounds)} NaN-delimited sets for "
            f"{n_sets} BRANCH_MEMBER nodes"
        )
    starts, ends, k = [0] * len(modes), [0] * len(modes), 0
    for i, m in enumerate(modes):
        if m == MEMBER:
            starts[i], ends[i] = bounds[k]
            k += 1
    return starts, ends, values


def _check_acyclic(node: Node, forest: Forest, n_features: int) -> None:
    """Every node reachable from a root: a feature inside the row, and no path that returns to it."""
    state = [0] * len(forest.feature)  # 0 unseen, 1 on the current path, 2 done
    for root in forest.roots:
        if root < 0 or state[root] == 2:
            continue
        stack = [(root, 0)]
        state[root] = 1
        while stack:
            at, branch = stack.pop()
            if branch == 0 and not 0 <= forest.feature[at] < n_features:
                raise ShapeError(
                    f"TreeEnsemble {node.name!r}: node {at} reads feature {forest.feature[at]}, but X has "
                    f"{n_features} features"
                )
            if branch == 2:
                state[at] = 2
                continue
            stack.append((at, branch + 1))
            child = (forest.true_child, forest.false_child)[branch][at]
            if child < 0 or state[child] == 2:
                continue
            if state[child] == 1:
                raise ModelError(f"TreeEnsemble {node.name!r}: the trees have a cycle through node {child}")
            state[child] = 1
            stack.append((child, 0))


def parse_forest(node: Node, n_features: int) -> Forest:
    """The tree tables of a TreeEnsemble node, checked: every index in range and every tree finite."""
    name = f"TreeEnsemble {node.name!r}"
    feature = _ints(node, "nodes_featureids")
    modes = _ints(node, "nodes_modes")
    split = _floats(node, "nodes_splits")
    true_ids, false_ids = _ints(node, "nodes_truenodeids"), _ints(node, "nodes_falsenodeids")
    true_leaf, false_leaf = _ints(node, "nodes_trueleafs"), _ints(node, "nodes_falseleafs")
    missing = _ints(node, "nodes_missing_value_tracks_true", required=False) or [0] * len(feature)
    per_node = {"nodes_modes": modes, "nodes_splits": split, "nodes_truenodeids": true_ids}
    per_node |= {"nodes_falsenodeids": false_ids, "nodes_trueleafs": true_leaf, "nodes_falseleafs": false_leaf}
    per_node["nodes_missing_value_tracks_true"] = missing
    for key, values in per_node.items():
        if len(values) != len(feature):
            raise ModelError(f"{name}: {key} has {len(values)} entries for {len(feature)} nodes")
    if any(not 0 <= m <= MEMBER for m in modes):
        raise ModelError(f"{name}: nodes_modes must be in [0, 6], got {sorted(set(modes))}")
    weight, target = _floats(node, "leaf_weights"), _ints(node, "leaf_targetids")
    if len(weight) != len(target):
        raise ModelError(f"{name}: {len(weight)} leaf_weights for {len(target)} leaf_targetids")
    n_targets = node.attr("n_targets")
    n_targets = int(n_targets) if n_targets is not None else max(target, default=-1) + 1
    if any(not 0 <= t < n_targets for t in target):
        raise ModelError(f"{name}: leaf_targetids must be in [0, {n_targets}), got {sorted(set(target))}")
    if len(feature) > MAX_INDEX or len(weight) > MAX_INDEX or n_features > MAX_INDEX:
        raise UnsupportedError(f"{name}: more than {MAX_INDEX} nodes, leaves or features")

    def child(index: int, leaf: int, i: int) -> int:
        count = len(weight) if leaf else len(feature)
        if not 0 <= index < count:
            kind = "leaf" if leaf else "node"
            raise ModelError(f"{name}: node {i} points to {kind} {index}, outside [0, {count})")
        return -1 - index if leaf else index

    true_child = [child(n, leaf, i) for i, (n, leaf) in enumerate(zip(true_ids, true_leaf))]
    false_child = [child(n, leaf, i) for i, (n, leaf) in enumerate(zip(false_ids, false_leaf))]
    roots = []
    for r in _ints(node, "tree_roots"):
        if not 0 <= r < len(feature):
            raise ModelError(f"{name}: tree root {r} is outside [0, {len(feature)})")
        one_leaf = true_leaf[r] and false_leaf[r] and true_ids[r] == false_ids[r]
        roots.append(true_child[r] if one_leaf else r)
    aggregate, transform = int(node.attr("aggregate_function", 1)), int(node.attr("post_transform", 0))
    if not 0 <= aggregate < len(AGGREGATES):
        raise ModelError(f"{name}: aggregate_function {aggregate} is not one of 0 (AVERAGE) .. 3 (MAX)")
    if not 0 <= transform < len(TRANSFORMS):
        raise ModelError(f"{name}: post_transform {transform} is not one of 0 (NONE) .. 4 (PROBIT)")
    starts, ends, members = _member_sets(node, modes)
    forest = Forest(
        roots, feature, modes, split, [int(bool(m)) for m in missing], true_child, false_child, starts, ends,
        members, weight, target, n_targets, AGGREGATES[aggregate], TRANSFORMS[transform],
    )  # fmt: skip
    _check_acyclic(node, forest, n_features)
    return forest


def _leaf_of(forest: Forest, root: int, row: np.ndarray, split: np.ndarray, members: np.ndarray) -> int:
    at = root
    while at >= 0:
        v, s = row[forest.feature[at]], split[at]
        mode = forest.mode[at]
        if mode == MEMBER:
            go = bool(np.any(members[forest.member_start[at] : forest.member_end[at]] == v))
        else:
            go = bool((v <= s, v < s, v >= s, v > s, v == s, v != s)[mode])
        go = go or (bool(forest.missing[at]) and bool(np.isnan(v)))
        at = forest.true_child[at] if go else forest.false_child[at]
    return -1 - at


def erfinv_approx(x: np.ndarray) -> np.ndarray:
    """The erfinv approximation of onnxruntime's ml_common.h (Winitzki's, with its constants)."""
    sign = np.where(x < 0, -1.0, 1.0).astype(x.dtype)
    log = np.log((1 - x) * (1 + x))
    v = x.dtype.type(2 / (3.14159 * 0.147)) + x.dtype.type(0.5) * log
    v2 = x.dtype.type(1 / 0.147) * log
    return sign * np.sqrt(-v + np.sqrt(v * v - v2))


def post_transform(scores: np.ndarray, transform: str) -> np.ndarray:
    """`transform` applied to each row of `scores` [N, targets], in their element type."""
    t = scores.dtype.type
    if scores.size == 0:
        return scores
    if transform == "SOFTMAX":
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if transform == "LOGISTIC":
        a = t(1) / (t(1) + np.exp(-np.abs(scores)))
        return np.where(scores < 0, t(1) - a, a)
    if transform == "SOFTMAX_ZERO":
        top = scores.max(axis=1, keepdims=True)
        nonzero = (scores > t(1e-7)) | (scores < t(-1e-7))
        e = np.where(nonzero, np.exp(scores - top), scores * np.exp(-top))
        s = e.sum(axis=1, keepdims=True)
        return np.where(s == 0, t(0.5), e / np.where(s == 0, t(1), s))
    if transform == "PROBIT":
        return t(1.41421356) * erfinv_approx(scores * t(2) - t(1))
    return scores


def _tables(forest: Forest, dtype: DType) -> dict[str, str]:
    """The C initializers of the forest's tables (a zero stands in for an empty table)."""

    def init(values, to: DType | None = None) -> str:
        text = [c_literal(v, to) if to is not None else str(int(v)) for v in values]
        return ", ".join(text) or "0"

    return {
        "roots": init(forest.roots),
        "feature": init(forest.feature),
        "mode": init(forest.mode),
        "split": init(forest.split.astype(dtype.np).tolist(), dtype),
        "missing": init(forest.missing),
        "true_child": init(forest.true_child),
        "false_child": init(forest.false_child),
        "member_start": init(forest.member_start),
        "member_end": init(forest.member_end),
        "members": init(forest.members.astype(dtype.np).tolist(), dtype),
        "leaf_weight": init(forest.leaf_weight.astype(dtype.np).tolist(), dtype),
        "leaf_target": init(forest.leaf_target),
    }


@register("TreeEnsemble", since=[5], domain=ML_DOMAIN)
class TreeEnsemble(OpDef):
    def _x(self, node: Node) -> Value:
        x = need_input(node, 0)
        if x.dtype not in (FLOAT32, FLOAT64) and not x.dtype.storage_only:
            raise UnsupportedError(
                f"TreeEnsemble {node.name!r}: X of element type {x.dtype} is not supported (float types only)"
            )
        if x.rank != 2:
            raise ShapeError(f"TreeEnsemble {node.name!r}: X {list(x.shape)} must be 2-D [N, F]")
        return x

    def infer(self, node):
        x = self._x(node)
        forest = parse_forest(node, x.shape[1])
        return [(x.dtype, (x.shape[0], forest.n_targets))]

    def reference(self, node, inputs):
        x = inputs[0]
        forest = parse_forest(node, x.shape[1])
        dtype = x.dtype
        split, members = forest.split.astype(dtype), forest.members.astype(dtype)
        weight = forest.leaf_weight.astype(dtype)
        scores = np.zeros((x.shape[0], forest.n_targets), dtype)
        seen = np.zeros(scores.shape, bool)
        for n, row in enumerate(x):
            for root in forest.roots:
                leaf = _leaf_of(forest, root, row, split, members)
                w, t = weight[leaf], forest.leaf_target[leaf]
                if forest.aggregate in ("SUM", "AVERAGE"):
                    scores[n, t] += w
                elif not seen[n, t] or (w < scores[n, t] if forest.aggregate == "MIN" else w > scores[n, t]):
                    scores[n, t] = w
                seen[n, t] = True
        if forest.aggregate == "AVERAGE" and forest.roots:
            scores /= dtype.type(len(forest.roots))
        with np.errstate(all="ignore"):
            return [post_transform(scores, forest.transform).astype(dtype)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x, y)
        if y.size == 0:
            return []
        forest = parse_forest(node, x.shape[1])
        bounded = forest.aggregate in ("MIN", "MAX")
        params = {
            "ctype": x.dtype.c,
            "n_features": x.shape[1],
            "n_targets": forest.n_targets,
            "n_trees": len(forest.roots),
            "tables": _tables(forest, x.dtype),
            "has_members": MEMBER in forest.mode,
            "has_missing": any(forest.missing),
            "aggregate": forest.aggregate,
            "transform": forest.transform,
            "fn_exp": cmath("exp", x.dtype),
            "fn_fabs": cmath("fabs", x.dtype),
            "fn_log": cmath("log", x.dtype),
            "fn_sqrt": cmath("sqrt", x.dtype),
            "work_items": x.shape[0],
        }
        outputs, names = [y], ["X", "Y"]
        if bounded:  # whether a target has a score yet, per row
            outputs.append(Value(f"{y.name}:seen", UINT8, y.shape))
            names.append("Seen")
        return [Kernel("tree_ensemble", "tree_ensemble", [x], outputs, params, names)]
