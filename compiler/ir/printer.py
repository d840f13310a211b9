"""Stable, diffable text for a Graph: tests compare it, --dump-ir writes it."""

from __future__ import annotations

import json
import re

import numpy as np

from .graph import Graph, Node, Value

_PLAIN = re.compile(r"^[A-Za-z0-9_.:/-]+$")
_INLINE_LIMIT = 8


def value_ref(v: Value | None) -> str:
    if v is None:
        return "%none"
    return "%" + v.name if _PLAIN.match(v.name) else "%" + json.dumps(v.name)


def type_str(v: Value) -> str:
    dims = [f"<={d}" if i in v.dynamic_axes else str(d) for i, d in enumerate(v.shape)]
    return f"{v.dtype.name}[{','.join(dims)}]"


def _fmt_attr(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"tensor<{value.dtype}{list(value.shape)}>"
    if isinstance(value, float):
        return repr(float(np.float32(value)))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt_attr(x) for x in value) + "]"
    if isinstance(value, (str, bytes)):
        return json.dumps(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    if isinstance(value, Node):  # a Fused node's body
        return "{" + node_str(value) + "}"
    return str(value)


def const_str(v: Value) -> str:
    data = v.data
    assert data is not None
    if data.size and data.size <= _INLINE_LIMIT:
        body = np.array2string(data.reshape(-1), separator=",", threshold=_INLINE_LIMIT).replace("\n", "")
    elif data.size and np.all(data.reshape(-1) == data.reshape(-1)[0]):
        body = f"splat({data.reshape(-1)[0]})"
    else:
        body = "..."
    return f"{value_ref(v)}: {type_str(v)} = const {body}"


def node_str(node: Node) -> str:
    outs = ", ".join(f"{value_ref(o)}: {type_str(o)}" for o in node.outputs)
    ins = ", ".join(value_ref(v) for v in node.inputs)
    attrs = ", ".join(f"{k}={_fmt_attr(node.attrs[k])}" for k in sorted(node.attrs))
    text = f"{outs} = {node.op}({ins})"
    if attrs:
        text += " {" + attrs + "}"
    return text


def print_graph(graph: Graph) -> str:
    """The graph as text: signature, constants, then nodes in order."""
    ins = ", ".join(f"{value_ref(v)}: {type_str(v)}" for v in graph.inputs)
    outs = ", ".join(value_ref(v) for v in graph.outputs)
    lines = [f"graph({ins}) -> ({outs}) {{"]
    lines += ["  " + const_str(c) for c in graph.constants()]
    lines += ["  " + node_str(n) for n in graph.nodes]
    lines.append("}")
    return "\n".join(lines) + "\n"
