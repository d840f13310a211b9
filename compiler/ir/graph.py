"""The graph IR: one Value type, one Node type, one Graph type.

A Value has a dtype and a static shape. `data` holds its value where it is known at compile time:
a constant (producer None) is a weight; a node output with data set is still computed at run time
unless the fold pass replaces its node. An output of an op whose result shape depends on the data
(NonZero, Compress, Unique, NonMaxSuppression, ImageDecoder) has `dynamic_axes` set: its extents along those
axes are known only at run time, and `shape` holds the upper bound it is stored with (the run writes the
tensor it produced contiguously at the start of that storage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dtypes import DType


def axes_tuple(axes: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """OpDef.dynamic_axes' entry for one output (None, one axis, or several) as Value.dynamic_axes."""
    return () if axes is None else (axes,) if isinstance(axes, int) else tuple(sorted(axes))


class Value:
    __slots__ = ("name", "dtype", "shape", "data", "producer", "dynamic_axes")

    def __init__(self, name: str, dtype: DType, shape: tuple[int, ...], data: np.ndarray | None = None):
        self.name = name
        self.dtype = dtype
        self.shape = tuple(int(d) for d in shape)
        self.data = data
        self.producer: Node | None = None
        self.dynamic_axes: tuple[int, ...] = ()  # the axes whose extents each run reports

    @property
    def is_const(self) -> bool:
        return self.producer is None and self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        bound = f", dynamic axes {list(self.dynamic_axes)}" if self.dynamic_axes else ""
        return f"Value({self.name!r}, {self.dtype}, {list(self.shape)}{bound})"


@dataclass(eq=False)
class Node:
    op: str
    inputs: list[Value | None]
    outputs: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    domain: str = ""
    version: int = 0  # opset version of the node's domain

    def input(self, i: int) -> Value | None:
        """The i-th input, or None where it is absent or given as an empty name."""
        return self.inputs[i] if i < len(self.inputs) else None

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.name!r})"


@dataclass(eq=False)
class Graph:
    name: str
    inputs: list[Value]
    outputs: list[Value]
    nodes: list[Node]
    opsets: dict[str, int] = field(default_factory=dict)
    # Where graph inputs or outputs are sequences or optionals: how the tensors of `inputs` and `outputs`
    # group into them ({"inputs": [{"name", "form", "items"}], "outputs": [...]}, importer/sequences.py).
    signature: dict | None = None

    def constants(self) -> list[Value]:
        """Constants used by nodes or outputs, in first-use order."""
        seen: dict[int, Value] = {}
        for node in self.nodes:
            for v in node.inputs:
                if v is not None and v.is_const:
                    seen.setdefault(id(v), v)
        for v in self.outputs:
            if v.is_const:
                seen.setdefault(id(v), v)
        return list(seen.values())

    def consumers(self) -> dict[int, list[Node]]:
        """id(value) -> nodes reading it."""
        users: dict[int, list[Node]] = {}
        for node in self.nodes:
            for v in node.inputs:
                if v is not None:
                    users.setdefault(id(v), []).append(node)
        return users
