"""String ops: StringConcat, StringSplit, StringNormalizer (RegexFullMatch is in regex.py, LabelEncoder in
label_encoder.py, Equal on strings in logic.py).

A string is UTF-8 bytes (numpy object arrays of str here, decoded with surrogateescape so that any bytes
round-trip; NUL-terminated `mlcc_str` in C). Splitting on whitespace and case changes work on ASCII, as
Python's bytes methods do: bytes from 0x80 up are never whitespace and keep their case. The kernels make
their strings in the instance's string heap (runtime_c/mlcc_strings.h).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import INT64, STRING
from ..ir.graph import Node, Value
from .common import broadcast_shapes, need_input
from .elementwise import broadcast_kernel
from .registry import Kernel, OpDef, register


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _strings(node: Node, *values: Value) -> None:
    for v in values:
        if v.dtype != STRING:
            raise ModelError(f"{node.op} {node.name!r}: input {v.name!r} is {v.dtype}, not a string tensor")


def string_array(items, shape) -> np.ndarray:
    """An object array of `shape` holding `items` (np.array would make a character array of equal lists)."""
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out.reshape(shape)


def heap_kernel(k: Kernel) -> Kernel:
    """A kernel that makes strings: it takes the instance's string heap, and stays out of fusion."""
    k.params["strings"] = True
    k.fusable = None
    return k


@register("StringConcat", since=20)
class StringConcat(OpDef):
    strings = True

    def infer(self, node):
        x, y = need_input(node, 0), need_input(node, 1)
        _strings(node, x, y)
        return [(STRING, broadcast_shapes(node, x.shape, y.shape))]

    def reference(self, node, inputs):
        a, b = np.broadcast_arrays(*inputs[:2])
        return [string_array([p + q for p, q in zip(a.reshape(-1), b.reshape(-1))], a.shape)]

    def lower(self, node):
        k = broadcast_kernel(node, node.inputs[:2], node.outputs[0], "mlcc_str_cat(heap, v0, v1)")
        return [heap_kernel(k)]


def _split(s: str, delimiter: str | None, maxsplit: int) -> list[str]:
    return [_text(p) for p in _utf8(s).split(_utf8(delimiter) if delimiter else None, maxsplit)]


@register("StringSplit", since=20)
class StringSplit(OpDef):
    """Y: the parts of each string, padded with "" to the most parts any string has; Z: the number of parts.
    Y's last extent is known only at run time and has no bound before it: its kernel allocates Y in the
    instance's string heap ("owned_outputs", codegen/program.py), so Y can only be a graph output."""

    strings = True

    @staticmethod
    def _config(node):
        delimiter = node.attr("delimiter") or None
        maxsplit = node.attr("maxsplit")
        return delimiter, -1 if maxsplit is None or maxsplit < 0 else int(maxsplit)

    def infer(self, node):
        x = need_input(node, 0)
        _strings(node, x)
        if x.data is not None:  # folded: exact
            y = self.reference(node, [x.data])[0]
            return [(STRING, y.shape), (INT64, x.shape)]
        return [(STRING, (*x.shape, 0)), (INT64, x.shape)]

    def dynamic_axes(self, node):
        x = node.inputs[0]
        return [None if x.data is not None else x.rank, None]

    def reference(self, node, inputs):
        x = inputs[0]
        delimiter, maxsplit = self._config(node)
        parts = [_split(s, delimiter, maxsplit) for s in x.reshape(-1)]
        most = max((len(p) for p in parts), default=0)
        padded = [q for p in parts for q in p + [""] * (most - len(p))]
        counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
        return [string_array(padded, (*x.shape, most)), counts]

    def lower(self, node):
        x, (y, z) = node.inputs[0], node.outputs[:2] if len(node.outputs) > 1 else (node.outputs[0], None)
        if z is None:
            raise UnsupportedError(f"StringSplit {node.name!r}: mlcc needs the second output (the counts) named")
        delimiter, maxsplit = self._config(node)
        params = {
            "n": x.size,
            "delimiter": delimiter,
            "maxsplit": maxsplit,
            "owned_outputs": [0],
        }
        return [heap_kernel(Kernel("string_split", "string_split", [x], [y, z], params))]


@register("StringNormalizer", since=10)
class StringNormalizer(OpDef):
    """Drops the elements equal to a stopword (ASCII case folded unless is_case_sensitive), then changes
    the case (ASCII). X is [C] or [1, C]; if every element goes, Y is [""] ([[""]]). With stopwords Y's last
    extent depends on the data (bound: C)."""

    strings = True

    @staticmethod
    def _config(node):
        action = node.attr("case_change_action", "NONE")
        if action not in ("NONE", "LOWER", "UPPER"):
            raise ModelError(f"StringNormalizer {node.name!r}: case_change_action {action!r} is not NONE/LOWER/UPPER")
        return action, bool(node.attr("is_case_sensitive", 0)), list(node.attr("stopwords", []) or [])

    def infer(self, node):
        x = need_input(node, 0)
        _strings(node, x)
        if x.rank not in (1, 2) or (x.rank == 2 and x.shape[0] != 1):
            raise ModelError(f"StringNormalizer {node.name!r}: X must be [C] or [1, C], not {list(x.shape)}")
        stops = self._config(node)[2]
        if not stops:
            return [(STRING, x.shape)]
        return [(STRING, (*x.shape[:-1], max(x.shape[-1], 1)))]

    def dynamic_axes(self, node):
        return [node.inputs[0].rank - 1 if self._config(node)[2] else None]

    def reference(self, node, inputs):
        x = inputs[0]
        action, sensitive, stops = self._config(node)
        fold = (lambda b: b) if sensitive else bytes.lower
        stopset = {fold(_utf8(s)) for s in stops}
        kept = [_utf8(s) for s in x.reshape(-1) if fold(_utf8(s)) not in stopset]
        change = {"NONE": lambda b: b, "LOWER": bytes.lower, "UPPER": bytes.upper}[action]
        kept = [_text(change(b)) for b in kept]
        if not stops:
            return [string_array(kept, x.shape)]
        kept = kept or [""]
        return [string_array(kept, (*x.shape[:-1], len(kept)))]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        action, sensitive, stops = self._config(node)
        fold = (lambda b: b) if sensitive else bytes.lower
        params = {
            "n": x.size,
            "action": action,
            "sensitive": sensitive,
            "stopwords": sorted({_text(fold(_utf8(s))) for s in stops}),
            "dynamic": bool(stops),
        }
        return [heap_kernel(Kernel("string_normalizer", "string_normalizer", [x], [y], params))]
