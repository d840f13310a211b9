"""TfIdfVectorizer (opset 9) over integer tokens, on the "tfidf" kernel family, one work item per row of X.

The pool of n-grams is attributes, so it becomes constant C tables: each distinct n-gram whose length is in
[min_gram_length, max_gram_length], with its output coordinate (an n-gram listed twice keeps its last
coordinate, as onnx's reference trie does). A row counts, for each pool n-gram of length n, its occurrences
x[s], x[s + d], ..., x[s + (n - 1) d] for every skip distance d in 1 .. max_skip_count + 1 (unigrams only at
d = 1), which is what the reference's trie walk counts. The counts are then weighted per mode: TF keeps them,
IDF maps a nonzero count to the weight of its output coordinate (1 without weights), TFIDF multiplies. Like
onnxruntime and onnx's reference, `weights` is indexed by output coordinate. String pools are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, INT32, INT64, DType
from ..ir.graph import Node
from .common import c_literal, need_input, require_c
from .registry import Kernel, OpDef, register

MODES = ("TF", "IDF", "TFIDF")


@dataclass
class Pool:
    grams: list[tuple[int, ...]]  # distinct n-grams of a counted length
    coords: list[int]  # the output coordinate of each
    size: int  # output row length: max(ngram_indexes) + 1
    mode: str
    weights: list[float] | None
    max_skip: int


def _attr_int(node: Node, name: str) -> int:
    value = node.attr(name)
    if value is None:
        raise ModelError(f"TfIdfVectorizer {node.name!r}: attribute {name} is required")
    return int(value)


def parse_pool(node: Node) -> Pool:
    name = f"TfIdfVectorizer {node.name!r}"
    if node.attr("pool_strings"):
        raise UnsupportedError(f"{name}: pool_strings (string n-grams) is not supported; only pool_int64s is")
    pool = [int(v) for v in node.attr("pool_int64s") or []]
    mode = node.attr("mode")
    if mode not in MODES:
        raise ModelError(f"{name}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    low, high = _attr_int(node, "min_gram_length"), _attr_int(node, "max_gram_length")
    max_skip = _attr_int(node, "max_skip_count")
    if not 1 <= low <= high or max_skip < 0:
        raise ModelError(
            f"{name}: needs 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0, got "
            f"{low}, {high} and {max_skip}"
        )
    counts = [int(v) for v in node.attr("ngram_counts") or []]
    indexes = [int(v) for v in node.attr("ngram_indexes") or []]
    if not indexes or min(indexes) < 0:
        raise ModelError(f"{name}: ngram_indexes must be a non-empty list of coordinates >= 0")
    if any(not 0 <= c <= len(pool) for c in counts) or counts != sorted(counts):
        raise ModelError(f"{name}: ngram_counts {counts} must be ascending starts inside the pool ({len(pool)})")
    found: dict[tuple[int, ...], int] = {}
    gram_id = 0  # ids count every n-gram of the pool, counted length or not
    for i, start in enumerate(counts):
        n = i + 1
        end = counts[i + 1] if i + 1 < len(counts) else len(pool)
        for g in range((end - start) // n):
            if low <= n <= high:
                if gram_id >= len(indexes):
                    raise ModelError(f"{name}: ngram_indexes has {len(indexes)} entries, fewer than the pool's n-grams")
                found[tuple(pool[start + g * n : start + (g + 1) * n])] = indexes[gram_id]
            gram_id += 1
    size = max(indexes) + 1
    weights = node.attr("weights")
    weights = [float(w) for w in weights] if weights else None
    if weights is not None and mode != "TF" and len(weights) < size:
        raise ModelError(f"{name}: {len(weights)} weights for output rows of {size}")
    return Pool(list(found), list(found.values()), size, mode, weights, max_skip)


def count_grams(x: np.ndarray, pool: Pool) -> np.ndarray:
    """The counts [rows, size] of the pool's n-grams in each row of `x` (2-D)."""
    out = np.zeros((x.shape[0], pool.size), np.float32)
    c = x.shape[1]
    for gram, coord in zip(pool.grams, pool.coords):
        n = len(gram)
        for d in [1] if n == 1 else range(1, pool.max_skip + 2):
            span = d * (n - 1)
            if span >= c:
                continue
            hit = np.ones((x.shape[0], c - span), bool)
            for k, token in enumerate(gram):
                hit &= x[:, k * d : k * d + c - span] == token
            out[:, coord] += hit.sum(axis=1)
    return out


def weigh(counts: np.ndarray, pool: Pool) -> np.ndarray:
    w = None if pool.weights is None else np.asarray(pool.weights[: pool.size], np.float32)
    if pool.mode == "IDF":
        return np.where(counts > 0, np.float32(1) if w is None else w, np.float32(0)).astype(np.float32)
    if pool.mode == "TFIDF" and w is not None:
        return (counts * w).astype(np.float32)
    return counts


@register("TfIdfVectorizer", since=[9])
class TfIdfVectorizer(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        if x.dtype not in (INT32, INT64):
            raise UnsupportedError(
                f"TfIdfVectorizer {node.name!r}: X of element type {x.dtype} is not supported (int32, int64)"
            )
        if x.rank not in (1, 2):
            raise ShapeError(f"TfIdfVectorizer {node.name!r}: X {list(x.shape)} must be [C] or [N, C]")
        size = parse_pool(node).size
        return [(FLOAT32, (size,) if x.rank == 1 else (x.shape[0], size))]

    def reference(self, node, inputs):
        x, pool = inputs[0], parse_pool(node)
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        return [weigh(count_grams(rows.astype(np.int64), pool), pool).reshape(node.outputs[0].shape)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x, y)
        if y.size == 0:
            return []
        pool = parse_pool(node)
        starts = np.cumsum([0] + [len(g) for g in pool.grams])[:-1].tolist()

        def init(values, dtype: DType) -> str:
            return ", ".join(c_literal(v, dtype) for v in values) or "0"

        weights = pool.weights[: pool.size] if pool.weights is not None and pool.mode != "TF" else None
        params = {
            "xtype": x.dtype.c,
            "row": x.shape[-1],
            "size": pool.size,
            "n_grams": len(pool.grams),
            "max_distance": pool.max_skip + 1,
            "tokens": init([t for g in pool.grams for t in g], INT64),
            "lengths": init([len(g) for g in pool.grams], INT32),
            "starts": init(starts, INT32),
            "coords": init(pool.coords, INT32),
            "mode": pool.mode,
            "weights": None if weights is None else init(weights, FLOAT32),
            "work_items": 1 if x.rank == 1 else x.shape[0],
        }
        return [Kernel("tfidf", "tfidf", [x], [y], params, ["X", "Y"])]
