"""Type legalisation: float16 and bfloat16 are storage-only types (kept as bits; runtime_c/mlcc_convert.h).

Ops that only move or select elements (Reshape, Transpose, Concat, Gather, Where, ...) run on the stored
bits unchanged, and Cast/CastLike convert to and from them. Every other node that reads or writes one of
these types computes in float32 instead: its storage-only inputs are widened by a Cast (constants are
widened at compile time) and each storage-only result is computed as float32 and rounded back by a Cast,
once per node. Widening is exact and a single rounding of the float32 result is what numpy's float16
arithmetic gives for the basic operations; longer computations (a reduction, a normalisation) come out
closer to the exact result than an all-float16 evaluation would.
"""

from __future__ import annotations

from ..errors import UnsupportedError
from ..ir.dtypes import F4E2M1, FLOAT8, FLOAT32, SUB_BYTE_INTS, DType
from ..ir.graph import Graph, Node, Value
from ..ops.registry import infer_node

# Ops whose kernels copy or select elements without arithmetic on them (and the conversions themselves).
NATIVE = {
    "BitCast", "Cast", "CastLike", "Compress", "Concat", "DepthToSpace", "Dropout", "Expand", "Flatten", "Gather", "GatherElements",
    "GatherND", "Identity", "Reshape", "Shape", "Size", "Slice", "SpaceToDepth", "Split", "Squeeze", "Tile",
    "Transpose", "Unique", "Unsqueeze", "Where",
    "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",  # convert their draws themselves
}  # fmt: skip
# (Unique compares its elements: its kernel widens each one as it reads it, so its outputs stay bits.)


def _storage_only(v: Value | None) -> bool:
    return v is not None and v.dtype.storage_only


def _read_as_bits(node: Node) -> set[int]:
    """The narrow values a QuantizeLinear (y, y_zero_point) or DequantizeLinear (x, x_zero_point) kernel
    converts itself (ops/quant.py: float8, float4, sub-byte integers): legalisation leaves them as they are."""
    if node.domain != "" or node.op not in ("QuantizeLinear", "DequantizeLinear"):
        return set()
    values = [node.outputs[0], node.input(2)] if node.op == "QuantizeLinear" else [node.inputs[0], node.input(2)]
    return {id(v) for v in values if v is not None and v.dtype in (*FLOAT8, F4E2M1, *SUB_BYTE_INTS)}


def _cast(src: Value, dst: Value, version: int) -> Node:
    node = Node("Cast", [src], [dst], {"to": dst.dtype.onnx}, name=f"{dst.name}:legalize", version=version)
    dst.producer = node
    return node


def legalize_types(graph: Graph) -> Graph:
    """Rewrite every non-native node that touches a storage-only type to compute in float32."""
    version = max(graph.opsets.get("", 13), 13)
    taken = {v.name for n in graph.nodes for v in [*n.inputs, *n.outputs] if v is not None}
    taken |= {v.name for v in graph.inputs}

    def fresh(base: str) -> str:
        name, k = f"{base}:f32", 1
        while name in taken:
            name, k = f"{base}:f32.{k}", k + 1
        taken.add(name)
        return name

    widened: dict[int, Value] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        bits = _read_as_bits(node)
        touched = [v for v in [*node.inputs, *node.outputs] if _storage_only(v) and id(v) not in bits]
        if (node.op in NATIVE and node.domain == "") or not touched:
            nodes.append(node)
            continue
        for i, v in enumerate(node.inputs):
            if not _storage_only(v) or id(v) in bits:
                continue
            if id(v) not in widened:
                data = None if v.data is None else v.data.astype(FLOAT32.np)
                wide = Value(fresh(v.name), FLOAT32, v.shape, data)
                if not v.is_const:
                    nodes.append(_cast(v, wide, version))
                widened[id(v)] = wide
            node.inputs[i] = widened[id(v)]
        inferred = infer_node(node)
        rounded = []
        for i, (o, (dtype, _)) in enumerate(zip(node.outputs, inferred)):
            if not o.dtype.storage_only or id(o) in bits:
                continue
            if dtype != FLOAT32:
                raise UnsupportedError(_no_float32(node, o.dtype, dtype))
            wide = Value(fresh(o.name), FLOAT32, o.shape, None if o.data is None else o.data.astype(FLOAT32.np))
            wide.producer, node.outputs[i] = node, wide
            rounded.append(_cast(wide, o, version))
        nodes.append(node)
        nodes.extend(rounded)
    graph.nodes = nodes
    return graph


def _no_float32(node: Node, want: DType, got: DType) -> str:
    return (
        f"{node.op} {node.name!r}: computes its {want} result from its attributes, and mlcc has no {want} "
        f"kernel for it (it gives {got} when its inputs are widened to float32)"
    )
