"""Target-independent host plan: kernels in order, where every value lives, the weight blob.

Storage classes: graph inputs and outputs are the caller's buffers; constants live in the weight blob
(or, when every element is equal, in a region filled once at create time); everything else gets an
offset in the activation arena from the memory planner.

Strings differ: a string constant is a table of C string literals in the generated source, and a string
output belongs to the instance: it is computed like an intermediate and then published (copied into the
instance's string heap, runtime_c/mlcc_strings.h), or, where its kernel allocates it itself because its
size has no bound before the run (StringSplit), "owned": the kernel stores it in the output's slot.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import InternalError
from ..ir.dtypes import STRING
from ..ir.graph import Graph, Node, Value
from ..ops.registry import Kernel, lookup
from ..passes.memory_plan import ALIGN, MemoryPlan, plan_memory
from ..passes.views import find_views

WEIGHTS_MAGIC = b"MLCCWTS1"
WEIGHTS_HEADER = 64  # magic (8) + model hash (32) + payload bytes (8) + padding
SPLAT_MIN_BYTES = 256  # constants at least this big whose elements are all equal are filled, not stored


@dataclass(frozen=True)
class Location:
    kind: str  # "input", "output", "arena", "weights", "fill", "strings" (a constant), "owned" (see above)
    index: int  # input/output index, byte offset, string table or owned slot


@dataclass
class Fill:
    value: Value
    offset: int
    literal: object  # the repeated element, as a Python scalar


@dataclass
class Step:
    kernel: Kernel
    node: Node


@dataclass
class Program:
    graph: Graph
    steps: list[Step]
    locations: dict[int, Location]
    memory: MemoryPlan
    weights: bytes  # payload, without header
    fills: list[Fill]
    fill_bytes: int
    output_copies: list[tuple[int, Value]] = field(default_factory=list)  # (output index, source value)
    extents: dict[int, int] = field(default_factory=dict)  # id(value) -> first slot of its run-time extents
    string_consts: list[Value] = field(default_factory=list)  # Location("strings", i) is string_consts[i]
    published: list[tuple[int, Value]] = field(default_factory=list)  # (output index, value): string outputs
    # copies the memory planner made views (passes/views.py): (position in steps, the step, the view)
    elided: list[tuple[int, Step, Value]] = field(default_factory=list)
    extent_slots: int = 0  # slots in all: one per dynamic axis of each value in `extents`

    @property
    def uses_strings(self) -> bool:
        return any(v.dtype == STRING for s in self.steps for v in s.kernel.inputs + s.kernel.outputs) or any(
            v.dtype == STRING for v in self.graph.inputs + self.graph.outputs
        )

    def extent_slot(self, v: Value) -> int | None:
        """The first of the consecutive slots where the kernel that writes `v` reports its extents along
        v.dynamic_axes, in order (None: a static shape)."""
        return self.extents.get(id(v))

    def where(self, v: Value) -> Location:
        try:
            return self.locations[id(v)]
        except KeyError:
            raise InternalError(f"value {v.name!r} has no storage") from None


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lower_graph(graph: Graph) -> list[Step]:
    steps = []
    for node in graph.nodes:
        entry = lookup(node.op, node.domain, node.version)
        if entry is None:
            raise InternalError(f"no lowering for {node.op}")
        steps.extend(Step(k, node) for k in entry.lower(node))
    return steps


def _is_splat(data: np.ndarray) -> bool:
    flat = data.reshape(-1)
    return data.nbytes >= SPLAT_MIN_BYTES and bool(np.all(flat == flat[0]))


def build_program(graph: Graph, views: bool = False) -> Program:
    """The host plan for `graph`; `views` lets the memory planner store values inside others and drop the
    copies that made them (passes/views.py; every target: no c or cuda kernel assumes more than its element
    type's alignment, which a view keeps)."""
    steps = lower_graph(graph)
    locations: dict[int, Location] = {}
    for i, v in enumerate(graph.inputs):
        locations[id(v)] = Location("input", i)

    owned = {id(v) for s in steps for i in s.kernel.params.get("owned_outputs", ()) for v in [s.kernel.outputs[i]]}
    output_copies, published = [], []
    for j, v in enumerate(graph.outputs):
        if v.dtype == STRING:
            published.append((j, v))
            if id(v) in owned and id(v) not in locations:
                locations[id(v)] = Location("owned", j)
        elif id(v) in locations or v.is_const:
            output_copies.append((j, v))  # an input, a constant or a repeated output: copied at the end
        else:
            locations[id(v)] = Location("output", j)
    for s in steps:  # an owned value no output reads still needs a slot to be written to
        for v in s.kernel.outputs:
            if id(v) in owned and id(v) not in locations:
                locations[id(v)] = Location("owned", len(graph.outputs))

    weights, fills, weight_size, fill_size = bytearray(), [], 0, 0
    string_consts = []
    for c in graph.constants():
        if c.dtype == STRING:
            locations[id(c)] = Location("strings", len(string_consts))
            string_consts.append(c)
        elif _is_splat(c.data):
            fills.append(Fill(c, fill_size, c.data.reshape(-1)[0].item()))
            locations[id(c)] = Location("fill", fill_size)
            fill_size += _align(c.nbytes)
        else:
            locations[id(c)] = Location("weights", weight_size)
            weights += c.data.tobytes()
            weights += b"\0" * (_align(len(weights)) - len(weights))
            weight_size = len(weights)

    pinned = set(locations)
    stored_in, dropped = find_views(steps, pinned) if views else ({}, {})
    kept: list[Step] = []
    elided = []
    for t, s in enumerate(steps):
        if t in dropped:
            elided.append((len(kept), s, dropped[t]))  # the copy sat before the kernel now at len(kept)
        else:
            kept.append(s)
    steps = kept
    # string outputs are published after the last kernel: a final pseudo-step reads them
    uses = [(s.kernel.inputs, s.kernel.outputs) for s in steps] + [([v for _, v in published], [])]
    memory = plan_memory(uses, pinned, [s.kernel for s in steps] + [None], stored_in)
    for key, offset in memory.offsets.items():
        locations[key] = Location("arena", offset)
    extents: dict[int, int] = {}
    slots = 0
    for step in steps:
        for v in step.kernel.outputs:
            if v.dynamic_axes and id(v) not in extents:
                extents[id(v)] = slots
                slots += len(v.dynamic_axes)
    return Program(
        graph,
        steps,
        locations,
        memory,
        bytes(weights),
        fills,
        fill_size,
        output_copies,
        extents,
        string_consts,
        published,
        elided,
        slots,
    )


def weights_file(payload: bytes, model_hash: str) -> bytes:
    """The weight blob as written to weights.bin: a header that ties it to one model, then the payload."""
    header = WEIGHTS_MAGIC + bytes.fromhex(model_hash) + len(payload).to_bytes(8, "little")
    return header + b"\0" * (WEIGHTS_HEADER - len(header)) + payload


def model_hash(model_bytes: bytes, options: dict) -> str:
    """sha256 over the serialized model and the options that change generated code."""
    h = hashlib.sha256(model_bytes)
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()
