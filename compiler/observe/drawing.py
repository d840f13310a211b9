"""The final graph as plain data for --viz: boxes with value types and storage, clusters, edges.

Every string that comes from the model passes through `shown` (control, bidi and non-UTF-8 characters become
visible escapes; long names are cut); renderers add their format's own escaping. Box ids are generated,
never names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codegen.program import Program
from ..ir.graph import Node, Value
from ..ir.printer import type_str
from ..passes.memory_plan import ALIGN

FUSED = ("Fused", "mlcc")  # (op, domain) of a fused node; attrs["body"] holds its original nodes
NAME_CHARS = 48  # names longer than this are cut in labels (the full name is in the SVG tooltip)
TITLE_CHARS = 200  # tooltips
MAX_CONSTANT_LINES = 3


@dataclass
class Box:
    id: str
    title: str
    lines: list[str]
    kind: str = "node"  # "node", "input", "output"
    tooltip: str = ""


@dataclass
class Cluster:
    id: str
    title: str
    boxes: list[Box]


@dataclass
class Drawing:
    title: str
    summary: list[str]
    items: list[Box | Cluster] = field(default_factory=list)  # in graph order (topological)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (from box id, to box id)
    arena: list[tuple[int, int, str]] = field(default_factory=list)  # (offset, size, value) by offset


def shown(text: str, limit: int = NAME_CHARS) -> str:
    """`text` as printable, unambiguous characters: backslash escapes for control, format (bidi) and
    non-UTF-8 characters (surrogate escapes show their original byte); cut to `limit` characters."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    result = "".join(out)
    return result if len(result) <= limit else result[: limit - 3] + "..."


def _bytes(n: int) -> str:
    return f"{n:,} B"


def _arena_size(v: Value) -> int:
    return (max(v.nbytes, 1) + ALIGN - 1) // ALIGN * ALIGN  # as the memory planner reserves it


def _where(program: Program, v: Value) -> str:
    loc = program.locations.get(id(v))
    if loc is None:
        return "in kernel"
    if loc.kind == "arena":
        return f"arena @{loc.index:,} +{_bytes(_arena_size(v))}"
    if loc.kind in ("input", "output"):
        return f"{loc.kind} #{loc.index}"
    return f"{loc.kind} @{loc.index:,} +{_bytes(v.nbytes)}"


def _value_lines(program: Program, v: Value, prefix: str = "") -> list[str]:
    return [f"{prefix}{shown(v.name)}: {type_str(v)}", f"  {_where(program, v)}"]


def _op(node: Node) -> str:
    return shown(node.op if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op}")


def _node_box(program: Program, node: Node, box_id: str, temps: list[Value]) -> Box:
    lines = [shown(node.name)] if node.name else []
    for v in node.outputs:
        lines += _value_lines(program, v)
    constants = [v for v in node.inputs if v is not None and v.is_const]
    for v in constants[:MAX_CONSTANT_LINES]:
        lines.append(f"const {shown(v.name)}: {type_str(v)} {_where(program, v)}")
    if len(constants) > MAX_CONSTANT_LINES:
        lines.append(f"+{len(constants) - MAX_CONSTANT_LINES} more constants")
    for v in temps:
        lines += _value_lines(program, v, "temp ")
    return Box(box_id, _op(node), lines, tooltip=shown(node.name, TITLE_CHARS))


def drawing(program: Program) -> Drawing:
    """The graph of `program` as boxes (fused nodes as clusters of their body) and producer -> consumer edges."""
    graph, memory = program.graph, program.memory
    d = Drawing(
        title=f"mlcc: {shown(graph.name, 120)}",
        summary=[
            f"{len(graph.nodes)} nodes, {len(program.steps)} kernels",
            f"arena {_bytes(memory.arena_bytes)} (naive {_bytes(memory.naive_bytes)}, "
            f"lower bound {_bytes(memory.lower_bound_bytes)})",
            f"weights {_bytes(len(program.weights))}, filled at create {_bytes(program.fill_bytes)}",
        ],
    )
    producer: dict[int, str] = {}  # id(value) -> id of the box that makes it
    edges: dict[tuple[str, str], None] = {}

    def connect(node: Node, box_id: str) -> None:
        for v in node.inputs:
            if v is not None and id(v) in producer:
                edges.setdefault((producer[id(v)], box_id))
        for v in node.outputs:
            producer[id(v)] = box_id

    for i, v in enumerate(graph.inputs):
        box = Box(f"i{i}", "input", _value_lines(program, v), "input", shown(v.name, TITLE_CHARS))
        d.items.append(box)
        producer[id(v)] = box.id
    temps: dict[int, list[Value]] = {}
    kernel_names: dict[int, list[str]] = {}
    for step in program.steps:
        kernel_names.setdefault(id(step.node), []).append(step.kernel.name)
        own = {id(v) for v in step.node.outputs}
        mine = temps.setdefault(id(step.node), [])
        mine += [v for v in step.kernel.outputs if id(v) not in own and all(v is not t for t in mine)]
    for k, node in enumerate(graph.nodes):
        body = node.attrs.get("body") if (node.op, node.domain) == FUSED else None
        if not body:
            box = _node_box(program, node, f"n{k}", temps.get(id(node), []))
            d.items.append(box)
            connect(node, box.id)
            continue
        boxes = []
        for j, member in enumerate(body):
            last = j == len(body) - 1  # the fused kernel's own temporaries show on its last node
            box = _node_box(program, member, f"n{k}_{j}", temps.get(id(node), []) if last else [])
            boxes.append(box)
            connect(member, box.id)
        for v in node.outputs:  # a fused output that no body node names is made by the last one
            producer.setdefault(id(v), boxes[-1].id)
        names = ", ".join(shown(n) for n in kernel_names.get(id(node), []))
        d.items.append(Cluster(f"c{k}", f"fused kernel {names}" if names else "fused", boxes))
    for j, v in enumerate(graph.outputs):
        box = Box(f"o{j}", "output", _value_lines(program, v), "output", shown(v.name, TITLE_CHARS))
        d.items.append(box)
        if id(v) in producer:
            edges.setdefault((producer[id(v)], box.id))
    d.edges = list(edges)
    placed = {id(v): v for step in program.steps for v in step.kernel.outputs}
    for key, offset in program.memory.offsets.items():
        if key in placed:
            v = placed[key]
            d.arena.append((offset, _arena_size(v), f"{shown(v.name)}: {type_str(v)}"))
    d.arena.sort()
    return d
