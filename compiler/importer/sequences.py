"""Sequence and optional values, resolved while importing (like control flow), so the IR stays tensors only.

- A sequence is a list of tensor Values whose length is known at compile time (`Seq`). Its elements may
  differ in shape. SequenceConstruct, SequenceEmpty, SequenceInsert, SequenceErase, SequenceLength,
  SplitToSequence and ConcatFromSequence become list operations and ordinary nodes (Slice, Gather, Concat).
  Positions must be known at compile time, except SequenceAt's over elements of one type and shape, which
  stacks them and gathers at run time. Loops carry sequences by being unrolled (control_flow.py).
- An optional is present or empty at compile time (`Opt`): OptionalHasElement folds to a constant, and
  OptionalGetElement of an empty optional is an error.
- A sequence or optional graph input is bound at compile time: its length and element shapes (or whether
  it is present) come from --input-shape; mlcc.backend takes them from the arrays of each run. In the C API
  each element is one tensor input or output, named NAME[i]; model.json records how they group
  (`signature`), and the Python loader takes and returns lists and None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import BOOL, BY_ONNX, INT64, DType
from ..ir.graph import Node, Value

SINCE = {
    "SequenceConstruct": 11,
    "SequenceEmpty": 11,
    "SequenceInsert": 11,
    "SequenceAt": 11,
    "SequenceErase": 11,
    "SequenceLength": 11,
    "SplitToSequence": 11,
    "ConcatFromSequence": 11,
    "Optional": 15,
}
SEQUENCE_OPS = set(SINCE)
MAX_LENGTH = 4096  # elements per sequence: each is its own tensor, so a huge split is an error, not a runaway
ON_ANY_VALUE = {"Identity", "OptionalHasElement", "OptionalGetElement"}  # here when given a sequence or optional


@dataclass(eq=False)
class Seq:
    dtype: DType
    items: list[Value]


@dataclass(eq=False)
class Opt:
    item: Value | Seq | None
    kind: str = "tensor"  # what it holds or would hold: "tensor" or "sequence"


def kind_of(obj) -> str:
    return "sequence" if isinstance(obj, Seq) else "optional" if isinstance(obj, Opt) else "tensor"


def form_of(obj) -> str:
    """How a graph input or output appears in model.json's signature."""
    if isinstance(obj, Opt):
        return "empty optional" if obj.item is None else f"optional {kind_of(obj.item)}"
    return kind_of(obj)


def elements(obj) -> list[Value]:
    """The tensors a graph input or output is made of, in order."""
    if isinstance(obj, Opt):
        return [] if obj.item is None else elements(obj.item)
    return list(obj.items) if isinstance(obj, Seq) else [obj]


def uses_sequences(proto: onnx.NodeProto, values: dict) -> bool:
    """Whether the importer resolves this node here (rather than through the op registry)."""
    if proto.op_type in SEQUENCE_OPS:
        return True
    return proto.op_type in ON_ANY_VALUE and any(
        not isinstance(values.get(_name(i)), Value) for i in proto.input[:1] if i
    )


def _name(s) -> str:
    return s.decode("utf-8", "surrogateescape") if isinstance(s, bytes) else s


class SequenceOps:
    """The sequence and optional operators, for the Expander (control_flow.py), which supplies values, emit,
    const, known, fresh and name_of."""

    def sequence_node(self, proto: onnx.NodeProto) -> list[Node]:
        where = f"{proto.op_type} {_name(proto.name)!r}"
        ins = [_name(i) for i in proto.input]
        outs = [_name(o) for o in proto.output]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        if not outs:
            raise ModelError(f"{where}: has no output")
        nodes, result = getattr(self, f"_op_{proto.op_type.lower()}")(where, ins, attrs)
        return nodes + self.bind(outs[0], result)

    # -- helpers -------------------------------------------------------------------------------------------

    def bind(self, out: str, obj) -> list[Node]:
        """Give a node's output name to `obj`: a tensor through an Identity node (a graph output keeps its
        name that way), a sequence or optional directly."""
        if not out:
            return []
        if isinstance(obj, Value):
            return [self.emit("Identity", [self.name_of(obj)], out)[0]]
        if out in self.values:
            raise ModelError(f"output {out!r} is defined twice")
        self.values[out] = obj
        return []

    def _arg(self, ins: list[str], i: int, where: str):
        if i >= len(ins) or not ins[i]:
            raise ModelError(f"{where}: required input {i} is missing")
        return self.values[ins[i]]

    def _seq(self, ins: list[str], where: str) -> Seq:
        s = self._arg(ins, 0, where)
        if isinstance(s, Opt) and isinstance(s.item, Seq):
            s = s.item
        if not isinstance(s, Seq):
            raise ModelError(f"{where}: input {ins[0]!r} is a {kind_of(s)}, not a sequence")
        return s

    def _tensor(self, ins: list[str], i: int, where: str) -> Value:
        v = self._arg(ins, i, where)
        if not isinstance(v, Value):
            raise ModelError(f"{where}: input {ins[i]!r} is a {kind_of(v)}, not a tensor")
        return v

    def _position(self, ins: list[str], i: int, where: str, length: int, default: int, insert: bool) -> int:
        """A position input known at compile time, checked against the sequence length and made positive."""
        if i >= len(ins) or not ins[i]:
            return default
        self._tensor(ins, i, where)
        data = np.asarray(self.known(ins[i], "position", where)).reshape(-1)
        if data.size != 1 or data.dtype.kind not in "iu":
            raise ModelError(f"{where}: the position must be one integer")
        pos, top = int(data[0]), length if insert else length - 1
        if not -length <= pos <= top:
            raise ModelError(f"{where}: position {pos} is outside [{-length}, {top}] for a sequence of {length}")
        return pos + length if pos < 0 else pos

    def _int_const(self, values) -> str:
        return self.const(np.asarray(values, np.int64), INT64)

    # -- the ops -------------------------------------------------------------------------------------------

    def _op_sequenceconstruct(self, where, ins, attrs):
        items = [self._tensor(ins, i, where) for i in range(len(ins))]
        if not items:
            raise ModelError(f"{where}: needs at least one input")
        if len({v.dtype for v in items}) != 1:
            raise ModelError(f"{where}: the inputs differ in element type ({sorted({str(v.dtype) for v in items})})")
        return [], Seq(items[0].dtype, items)

    def _op_sequenceempty(self, where, ins, attrs):
        code = int(attrs.get("dtype", onnx.TensorProto.FLOAT))
        if code not in BY_ONNX:
            raise UnsupportedError(f"{where}: element type code {code} is not supported")
        return [], Seq(BY_ONNX[code], [])

    def _op_sequencelength(self, where, ins, attrs):
        return [], self.values[self.const(np.array(len(self._seq(ins, where).items), np.int64), INT64)]

    def _op_sequenceinsert(self, where, ins, attrs):
        s, t = self._seq(ins, where), self._tensor(ins, 1, where)
        if t.dtype != s.dtype:
            raise ModelError(f"{where}: inserts a {t.dtype} tensor into a sequence of {s.dtype}")
        n = len(s.items)
        pos = self._position(ins, 2, where, n, n, insert=True)
        if n >= MAX_LENGTH:
            raise UnsupportedError(f"{where}: the sequence would exceed {MAX_LENGTH} tensors")
        return [], Seq(s.dtype, [*s.items[:pos], t, *s.items[pos:]])

    def _op_sequenceerase(self, where, ins, attrs):
        s = self._seq(ins, where)
        n = len(s.items)
        if n == 0:
            raise ModelError(f"{where}: erases from an empty sequence")
        pos = self._position(ins, 1, where, n, n - 1, insert=False)
        return [], Seq(s.dtype, s.items[:pos] + s.items[pos + 1 :])

    def _op_sequenceat(self, where, ins, attrs):
        s = self._seq(ins, where)
        n = len(s.items)
        p = self._tensor(ins, 1, where)
        if p.data is not None or n == 0 or len({(v.dtype, v.shape) for v in s.items}) != 1:
            return [], s.items[self._position(ins, 1, where, n, 0, insert=False)]
        # a run-time position over elements of one type and shape: stack them and gather
        table = self.fresh("sequence_table")
        nodes = self._stack([self.name_of(v) for v in s.items], 0, table)
        index_node, index = self.emit("Reshape", [ins[1], self._int_const([])])
        gather, out = self.emit("Gather", [table, index], axis=0)
        return [*nodes, index_node, gather], self.values[out]

    def _op_splittosequence(self, where, ins, attrs):
        x = self._tensor(ins, 0, where)
        axis = int(attrs.get("axis", 0))
        if not -x.rank <= axis < x.rank:
            raise ModelError(f"{where}: axis {axis} is outside rank {x.rank}")
        axis %= x.rank
        extent = x.shape[axis]
        if len(ins) > 1 and ins[1]:
            self._tensor(ins, 1, where)
            split = np.asarray(self.known(ins[1], "split", where))
            if split.dtype.kind not in "iu" or split.ndim > 1 or np.any(split < 0) or split.size == 0:
                raise ModelError(f"{where}: split must be non-negative integers (a scalar or a 1-D tensor)")
            if split.ndim == 0:
                step = int(split)
                if step == 0:
                    raise ModelError(f"{where}: a split size of 0")
                sizes = [min(step, extent - b) for b in range(0, extent, step)]
            else:
                sizes = [int(d) for d in split]
                if sum(sizes) != extent:
                    raise ModelError(f"{where}: split sizes {sizes} do not add up to dim {axis} ({extent})")
            keep = True
        else:
            sizes, keep = [1] * extent, bool(attrs.get("keepdims", 1))
        if len(sizes) > MAX_LENGTH:
            raise UnsupportedError(f"{where}: makes a sequence of {len(sizes)} tensors; mlcc allows {MAX_LENGTH}")
        nodes, items, begin = [], [], 0
        for size in sizes:
            if keep:
                starts, ends, axes = (self._int_const([b]) for b in (begin, begin + size, axis))
                node, name = self.emit("Slice", [ins[0], starts, ends, axes])
            else:
                node, name = self.emit("Gather", [ins[0], self._int_const(begin)], axis=axis)
            nodes.append(node)
            items.append(self.values[name])
            begin += size
        return nodes, Seq(x.dtype, items)

    def _op_concatfromsequence(self, where, ins, attrs):
        s = self._seq(ins, where)
        if not s.items:
            raise ModelError(f"{where}: concatenates an empty sequence (its result has no shape)")
        axis, new_axis = int(attrs.get("axis", 0)), int(attrs.get("new_axis", 0))
        names = [self.name_of(v) for v in s.items]
        out = self.fresh("concat_from_sequence")
        if new_axis:
            rank = s.items[0].rank + 1
            if not -rank <= axis < rank:
                raise ModelError(f"{where}: axis {axis} is outside rank {rank}")
            nodes = self._stack(names, axis % rank, out)
        else:
            nodes = [self.emit("Concat", names, out, axis=axis)[0]]
        return nodes, self.values[out]

    def _op_optional(self, where, ins, attrs):
        if ins and ins[0]:
            item = self._arg(ins, 0, where)
            if isinstance(item, Opt):
                raise ModelError(f"{where}: an optional of an optional")
            return [], Opt(item, kind_of(item))
        t = attrs.get("type")
        if t is None:
            raise ModelError(f"{where}: needs an input or a type attribute")
        return [], Opt(None, "sequence" if t.HasField("sequence_type") else "tensor")

    def _op_optionalhaselement(self, where, ins, attrs):
        v = self._arg(ins, 0, where) if ins and ins[0] else None
        present = v is not None and not (isinstance(v, Opt) and v.item is None)
        return [], self.values[self.const(np.array(present), BOOL)]

    def _op_optionalgetelement(self, where, ins, attrs):
        v = self._arg(ins, 0, where)
        if isinstance(v, Opt):
            if v.item is None:
                raise ModelError(f"{where}: the optional {ins[0]!r} is empty (known at compile time)")
            return [], v.item
        return [], v

    def _op_identity(self, where, ins, attrs):
        return [], self._arg(ins, 0, where)

    def select(self, cond: str, a, b, owner: str, out: str) -> list[Node]:
        """If-conversion of one output: Where(cond, a, b), element by element for sequences and optionals."""
        if isinstance(a, Value) and isinstance(b, Value):
            if a.dtype != b.dtype or a.shape != b.shape:
                raise UnsupportedError(
                    f"{owner}: with a condition computed at run time both branches must give the same type and "
                    f"shape; output {out!r} is {a.dtype}{list(a.shape)} or {b.dtype}{list(b.shape)}"
                )
            return [self.emit("Where", [cond, self.name_of(a), self.name_of(b)], out or None)[0]]
        if isinstance(a, Seq) and isinstance(b, Seq) and len(a.items) == len(b.items):
            nodes, items = [], []
            for i, (x, y) in enumerate(zip(a.items, b.items)):
                name = self.fresh(f"{out or 'select'}[{i}]")
                nodes += self.select(cond, x, y, owner, name)
                items.append(self.values[name])
            return nodes + self.bind(out, Seq(a.dtype, items))
        if isinstance(a, Opt) and isinstance(b, Opt) and (a.item is None) == (b.item is None):
            if a.item is None:
                return self.bind(out, a)
            inner = self.fresh(out or "select")
            nodes = self.select(cond, a.item, b.item, owner, inner)
            return nodes + self.bind(out, Opt(self.values[inner], a.kind))
        # what the output is depends on the condition: the caller must know it at compile time
        self.known(cond, f"condition (output {out!r} is {_describe(a)} or {_describe(b)})", owner)
        raise AssertionError("unreachable: the condition is computed at run time")


def _describe(obj) -> str:
    if isinstance(obj, Seq):
        return f"a sequence of {len(obj.items)}"
    if isinstance(obj, Opt):
        return "an empty optional" if obj.item is None else f"an optional {kind_of(obj.item)}"
    return f"a tensor {obj.dtype}{list(obj.shape)}"
