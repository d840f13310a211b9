"""The op registry: one entry per ONNX op (and opset range) with everything mlcc knows about it.

An entry is a class registered with @register; it provides
  infer(node)                  -> [(DType, shape)] for each output (the compiler's own inference)
  reference(node, inputs)      -> [np.ndarray] (numpy semantics; constant folding and tests use it)
  lower(node)                  -> [Kernel] (template families the backends render)
and may set `shape_only = True` when its output depends only on its inputs' shapes (Shape, Size).
An op whose output shape depends on its input data (NonZero, Unique, ...) infers an upper bound and
overrides dynamic_axes(node) to name, per output, the axis whose run-time extent its kernel reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Node, Value

ONNX_DOMAIN = ""
INTERNAL_DOMAIN = "mlcc"  # ops only mlcc's passes make (Fused, PackedConv, ...); models cannot use them


@dataclass(eq=False)
class Kernel:
    """One generated function: a template family rendered with plain-data params.

    `inputs`/`outputs` are the Values passed as pointer arguments, named `arg_names` inside the template.
    """

    family: str
    name: str
    inputs: list[Value]
    outputs: list[Value]
    params: dict[str, Any] = field(default_factory=dict)
    arg_names: list[str] | None = None
    # An "elementwise" kernel's loop before coalescing (dims, expr, in/out strides and offsets): what the
    # fusion of elementwise chains composes (compiler/ops/fused.py). None for every other kernel.
    fusable: dict[str, Any] | None = None

    def names(self) -> list[str]:
        if self.arg_names is not None:
            return self.arg_names
        return [f"in{i}" for i in range(len(self.inputs))] + [f"out{i}" for i in range(len(self.outputs))]


class OpDef:
    """Base class of registry entries. Subclasses override what they support."""

    op_type: str = ""
    domain: str = ONNX_DOMAIN
    since: int = 1
    shape_only: bool = False
    strings: bool = False  # takes or makes string tensors (the importer refuses them in every other op)

    def infer(self, node: Node) -> list[tuple[DType, tuple[int, ...]]]:
        raise NotImplementedError

    def reference(self, node: Node, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        raise NotImplementedError

    def lower(self, node: Node) -> list[Kernel]:
        raise NotImplementedError

    def foldable(self, node: Node) -> bool:
        """False where the node is never computed at compile time, even from constant inputs (random ops)."""
        return True

    def dynamic_axes(self, node: Node) -> list[int | tuple[int, ...] | None]:
        """Per output: None for a static shape, else the axis (or axes) whose extent is known only at run time."""
        return []


_REGISTRY: dict[tuple[str, str], list[tuple[int, OpDef]]] = {}


def register(op_type: str, since: int | Sequence[int] = 1, domain: str = ONNX_DOMAIN):
    """Class decorator: register an OpDef for `op_type` from each opset version in `since` on."""
    versions = [since] if isinstance(since, int) else list(since)

    def wrap(cls: type[OpDef]) -> type[OpDef]:
        entry = cls()
        entry.op_type, entry.domain = op_type, domain
        entries = _REGISTRY.setdefault((domain, op_type), [])
        for v in versions:
            entries.append((v, entry))
        entries.sort(key=lambda e: e[0])
        return cls

    return wrap


def lookup(op_type: str, domain: str, version: int) -> OpDef | None:
    """The entry for `op_type` at opset `version`: the one registered with the highest since <= version."""
    found = None
    for since, entry in _REGISTRY.get((domain, op_type), []):
        if since <= version:
            found = entry
    return found


def supported_ops() -> dict[tuple[str, str], list[int]]:
    """(domain, op_type) -> the opset versions registered, for docs and tests."""
    return {key: [v for v, _ in entries] for key, entries in sorted(_REGISTRY.items())}


def infer_node(node: Node) -> list[tuple[DType, tuple[int, ...]]]:
    entry = lookup(node.op, node.domain, node.version)
    assert entry is not None, node.op
    return entry.infer(node)
