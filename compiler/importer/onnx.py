"""ONNX ModelProto -> ir.Graph. Structure only: op semantics live in the op registry."""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, numpy_helper

from ..errors import CompileTimeValueError, MlccError, ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import BY_ONNX, FLOAT32, STRING
from ..ir.graph import Graph, Node, Value, axes_tuple
from ..ops import registry
from .control_flow import CONTROL_FLOW, Expander, all_nodes, node_inputs, runtime_sources
from .functions import expand_functions
from .sequences import MAX_LENGTH, SEQUENCE_OPS, SINCE, Opt, Seq, elements, form_of

MAX_ELEMENTS = 2**31 - 1  # per tensor; larger shapes are rejected before anything is allocated
MAX_TENSOR_BYTES = 4 << 30  # per tensor
MAX_FOLDED_BYTES = 8 << 30  # all values computed at compile time together: bounds the compiler's memory
_MALFORMED = (TypeError, ValueError, IndexError, KeyError, AttributeError, AssertionError, ArithmeticError)
InputShapes = Mapping[str, Sequence[int] | Sequence[Sequence[int]] | None]  # see _graph_input


def text(s: str | bytes) -> str:
    """A protobuf string as str. Invalid UTF-8 arrives as bytes; its bytes survive as surrogate escapes and
    are restored byte for byte wherever a name is emitted (through the escaping functions)."""
    return s if isinstance(s, str) else s.decode("utf-8", "surrogateescape")


def load_model(source: onnx.ModelProto | str | os.PathLike) -> tuple[onnx.ModelProto, Path | None, bytes]:
    """Parse a model file (or take a ModelProto): (model, directory for external data, serialized bytes).

    External data is not loaded here; tensor_to_array resolves it, refusing paths outside the directory.
    """
    if isinstance(source, onnx.ModelProto):
        return source, None, source.SerializeToString(deterministic=True)
    path = Path(source)
    if not path.is_file():
        raise MlccError(f"cannot read model {str(path)!r}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise MlccError(f"cannot read model {str(path)!r}: {err.strerror}") from None
    try:
        model = onnx.ModelProto.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ModelError(f"{str(path)!r} is not a valid ONNX model ({type(err).__name__}: {err})") from None
    return model, path.parent, raw


def _external_bytes(tensor: onnx.TensorProto, base_dir: Path | None) -> bytes:
    """Read a tensor's external data, refusing locations outside the model's directory."""
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise ModelError(f"initializer {tensor.name!r} has external data; pass the model as a file path")
    root = base_dir.resolve()
    target = (root / location).resolve()
    if os.path.isabs(location) or not location or root not in target.parents:
        raise ModelError(
            f"initializer {tensor.name!r}: external data location {location!r} is outside the model's directory"
        )
    if not target.is_file():
        raise ModelError(f"initializer {tensor.name!r}: external data file {location!r} not found next to the model")
    offset, length = int(info.get("offset", 0) or 0), info.get("length")
    size = target.stat().st_size
    length = size - offset if length is None else int(length)
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelError(f"initializer {tensor.name!r}: external data range {offset}+{length} exceeds {location!r}")
    with open(target, "rb") as f:
        f.seek(offset)
        return f.read(length)


def tensor_to_array(tensor: onnx.TensorProto, base_dir: Path | None = None) -> np.ndarray:
    """A TensorProto's value as numpy, checking that it holds the data it declares."""
    dtype = BY_ONNX.get(tensor.data_type)
    if dtype is None:
        raise UnsupportedError(f"tensor {tensor.name!r}: element type code {tensor.data_type} is not supported")
    dims = [int(d) for d in tensor.dims]
    _check_dims(f"tensor {tensor.name!r}", dims)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raw = _external_bytes(tensor, base_dir)
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        del copy.external_data[:]
        copy.data_location = onnx.TensorProto.DEFAULT
        copy.raw_data = raw
        tensor = copy
    if dtype == STRING:  # bytes, byte for byte (surrogateescape keeps invalid UTF-8; onnx's reader would fail)
        if len(tensor.string_data) != int(np.prod(dims, dtype=np.int64)):
            raise ModelError(f"tensor {tensor.name!r} holds {len(tensor.string_data)} strings for dims {dims}")
        items = np.empty(len(tensor.string_data), dtype=object)
        items[:] = [decode_string(b) for b in tensor.string_data]
        return items.reshape(dims)
    try:
        array = numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as err:
        raise ModelError(f"tensor {tensor.name!r} does not hold the data its dims declare ({err})") from None
    if list(array.shape) != dims:
        raise ModelError(f"tensor {tensor.name!r} holds {array.size} elements for dims {dims}")
    return np.require(array.astype(dtype.np, copy=False), requirements="C")


def decode_string(b: bytes | str) -> str:
    """A string element as mlcc holds it: str, invalid UTF-8 as surrogate escapes, and ending at a NUL byte
    as it does in C (so that folding at compile time sees what the generated code sees)."""
    s = b if isinstance(b, str) else bytes(b).decode("utf-8", "surrogateescape")
    return s.split("\0", 1)[0]


def _check_dims(what: str, dims: Sequence[int]) -> None:
    if any(d < 0 for d in dims):
        raise ShapeError(f"{what} has a negative dim {list(dims)}")
    if int(np.prod([max(d, 1) for d in dims], dtype=np.float64)) > MAX_ELEMENTS:
        raise ShapeError(f"{what} has {list(dims)}: more than {MAX_ELEMENTS} elements")


def _attr_value(attr: AttributeProto, base_dir: Path | None, where: str):
    t = attr.type
    if t == AttributeProto.FLOAT:
        return float(attr.f)
    if t == AttributeProto.INT:
        return int(attr.i)
    if t == AttributeProto.STRING:
        return attr.s.decode("utf-8", "surrogateescape")
    if t == AttributeProto.FLOATS:
        return [float(x) for x in attr.floats]
    if t == AttributeProto.INTS:
        return [int(x) for x in attr.ints]
    if t == AttributeProto.STRINGS:
        return [s.decode("utf-8", "surrogateescape") for s in attr.strings]
    if t == AttributeProto.TENSOR:
        return tensor_to_array(attr.t, base_dir)
    raise UnsupportedError(
        f"{where}: attribute {attr.name!r} of type {AttributeProto.AttributeType.Name(t)} is not supported"
    )


def _attributes(proto: onnx.NodeProto, domain: str, version: int, base_dir: Path | None, where: str) -> dict:
    """The node's attributes. Each one the operator's ONNX schema declares must come with the declared type
    (an `axis` given as a string would otherwise reach the passes as one), except that a whole FLOAT given
    for an INT, or an INT for a FLOAT, is taken as the declared type (what onnxruntime's readers accept)."""
    try:
        declared = onnx.defs.get_schema(proto.op_type, version, domain).attributes
    except onnx.defs.SchemaError:
        declared = {}  # mlcc's own domain: its ops check their attributes themselves
    attrs = {}
    for a in proto.attribute:
        value = _attr_value(a, base_dir, where)
        spec = declared.get(a.name)
        if spec is not None and a.type != spec.type:
            if a.type == AttributeProto.FLOAT and spec.type == AttributeProto.INT and float(value).is_integer():
                value = int(value)
            elif a.type == AttributeProto.INT and spec.type == AttributeProto.FLOAT:
                value = float(value)
            else:
                kind = AttributeProto.AttributeType.Name
                raise ModelError(
                    f"{where}: attribute {text(a.name)!r} is {kind(a.type)}; the operator takes {kind(spec.type)}"
                )
        attrs[text(a.name)] = value
    return attrs


def _tensor_input(name: str, tt: onnx.TypeProto.Tensor, given, flag: str) -> Value:
    """A tensor graph input (or one element of a sequence input): its shape as declared, or `given`
    (checked against what the model declares)."""
    dtype = BY_ONNX.get(tt.elem_type)
    if dtype is None:
        raise UnsupportedError(f"graph input {name!r}: element type code {tt.elem_type} is not supported")
    declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    if given is not None:
        if any(isinstance(d, (list, tuple)) or d is None for d in given):
            raise ShapeError(f"--input-shape {flag}: {name!r} is a tensor; give D0,D1,...")
        given = [int(d) for d in given]
        if tt.HasField("shape") and len(given) != len(declared):
            raise ShapeError(
                f"--input-shape {flag}: rank {len(given)} given, the model declares rank {len(declared)} {declared}"
            )
        for axis, (g, d) in enumerate(zip(given, declared)):
            if isinstance(d, int) and d != g:
                raise ShapeError(f"--input-shape {flag}: dim {axis} is {g}, the model fixes it to {d}")
        shape = given
    else:
        if not tt.HasField("shape"):
            raise ShapeError(f"graph input {name!r} has no shape; bind it with --input-shape {flag}=D0,D1,...")
        for axis, d in enumerate(declared):
            if not isinstance(d, int):
                raise ShapeError(
                    f"graph input {name!r} dim {axis} is symbolic ({d!r}) in {declared}; "
                    f"bind it with --input-shape {flag}=D0,D1,..."
                )
        shape = declared
    _check_dims(f"graph input {name!r}", shape)
    return Value(name, dtype, tuple(shape))


def _graph_input(name: str, t: onnx.TypeProto, bound: InputShapes, optional: bool = False):
    """A graph input as a tensor Value, a sequence (Seq of Values named NAME[i]) or an optional (Opt).

    A sequence's length and element shapes are bound at compile time (--input-shape NAME=[[D0,..],[..]]);
    an optional is present unless bound to None (--input-shape NAME=none)."""
    given = bound.get(name)
    if t.HasField("optional_type"):
        if optional:
            raise UnsupportedError(f"graph input {name!r}: an optional of an optional")
        inner = t.optional_type.elem_type
        kind = "sequence" if inner.HasField("sequence_type") else "tensor"
        if name in bound and given is None:
            return Opt(None, kind)
        return Opt(_graph_input(name, inner, bound, optional=True), kind)
    if name in bound and given is None:
        raise ShapeError(f"--input-shape {name}=none: only an optional input can be absent")
    if t.HasField("tensor_type"):
        return _tensor_input(name, t.tensor_type, given, name)
    if t.HasField("sequence_type") and t.sequence_type.elem_type.HasField("tensor_type"):
        tt = t.sequence_type.elem_type.tensor_type
        if given is None or not all(isinstance(s, (list, tuple)) for s in given):
            raise ShapeError(
                f"graph input {name!r} is a sequence, whose length mlcc fixes at compile time: give each "
                f"element's shape, --input-shape '{name}=[[D0,D1,...],[D0,D1,...]]' ('{name}=[]' if empty)"
            )
        if len(given) > MAX_LENGTH:
            raise ShapeError(f"graph input {name!r}: a sequence of {len(given)} tensors; mlcc allows {MAX_LENGTH}")
        items = [_tensor_input(f"{name}[{i}]", tt, shape, name) for i, shape in enumerate(given)]
        dtype = BY_ONNX.get(tt.elem_type)
        if dtype is None:
            raise UnsupportedError(f"graph input {name!r}: element type code {tt.elem_type} is not supported")
        return Seq(dtype, items)
    kind = t.WhichOneof("value") or "no type"
    if kind == "sequence_type":
        kind = f"sequence_type of {t.sequence_type.elem_type.WhichOneof('value') or 'no type'}"
    raise UnsupportedError(
        f"graph input {name!r}: {kind} inputs are not supported (tensors, sequences of tensors and optionals are)"
    )


def _check_supported(graph: onnx.GraphProto, opsets: Mapping[str, int]) -> None:
    """Raise one UnsupportedError listing every unsupported (op, domain, opset) with its nodes."""
    missing: dict[tuple[str, str, int | None], list[str]] = {}
    for node in all_nodes(graph):  # subgraphs (If/Loop/Scan bodies) included
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        version = opsets.get(domain)
        if domain == "" and node.op_type in CONTROL_FLOW and version is not None:
            continue  # resolved by the importer (control_flow.py)
        if domain == "" and node.op_type in SEQUENCE_OPS and (version or 0) >= SINCE[node.op_type]:
            continue  # resolved by the importer (sequences.py)
        internal = domain == registry.INTERNAL_DOMAIN  # compiler-made ops: their attributes are trusted
        if internal or version is None or registry.lookup(node.op_type, domain, version) is None:
            missing.setdefault((text(node.op_type), text(domain), version), []).append(text(node.name))
    if not missing:
        return
    lines = [f"the model uses {len(missing)} unsupported operator(s):"]
    for (op, domain, version), names in sorted(missing.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        dom = domain or "ai.onnx"
        opset = f"opset {version}" if version is not None else "no opset imported for this domain"
        shown = ", ".join(repr(n) for n in names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
        note = ""
        if domain == registry.INTERNAL_DOMAIN:
            note = " (mlcc's own domain, for ops its passes make: not accepted in models)"
        lines.append(f"  {op} (domain {dom}, {opset}): {len(names)} node(s): {shown}{note}")
    raise UnsupportedError("\n".join(lines))


def _topological(nodes: Sequence[onnx.NodeProto], known: set[str]) -> list[onnx.NodeProto]:
    """Nodes in an order where every input is defined first (stable; linear time); ModelError on a cycle
    or an undefined name."""
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in map(text, n.output):
            if o:
                producer.setdefault(o, i)
    waiting_on = [0] * len(nodes)
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in node_inputs(n):  # with the names its subgraphs capture
            if not name or name in known:
                continue
            if name not in producer:
                raise ModelError(f"node {text(n.op_type)} {text(n.name)!r} uses undefined tensor {name!r}")
            waiting_on[i] += 1
            users.setdefault(producer[name], []).append(i)
    ready = [i for i in range(len(nodes)) if waiting_on[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for u in users.get(i, []):
            waiting_on[u] -= 1
            if waiting_on[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = next(n for i, n in enumerate(nodes) if waiting_on[i])
        raise ModelError(f"the graph has a cycle through node {text(stuck.op_type)} {text(stuck.name)!r}")
    return order


def import_onnx(
    source: onnx.ModelProto | str | os.PathLike,
    input_shapes: InputShapes | None = None,
    progress: Callable[[int, int], None] | None = None,
    base_dir: Path | None = None,
) -> Graph:
    """Build the typed graph IR of an ONNX model with every shape static.

    `base_dir` is where a ModelProto's external data lives (a path source brings its own).
    """
    if isinstance(source, onnx.ModelProto):
        model = source
    else:
        model, base_dir, _ = load_model(source)
    bound = dict(input_shapes or {})
    opsets = {("" if o.domain in ("", "ai.onnx") else o.domain): int(o.version) for o in model.opset_import}
    if "" not in opsets and model.ir_version < 3:
        opsets[""] = 1
    newest = onnx.defs.onnx_opset_version()
    if opsets.get("", 0) > newest:
        raise UnsupportedError(
            f"the model imports opset {opsets['']} of the default domain; the installed onnx knows opsets up to "
            f"{newest} (upgrade onnx, or export the model for an older opset)"
        )
    if not model.graph.output:
        raise ModelError("the model has no graph outputs (an empty or truncated file?)")
    model = expand_functions(model, lambda op, domain, version: registry.lookup(op, domain, version) is not None)
    graph = model.graph
    _check_supported(graph, opsets)

    values: dict[str, Value] = {}
    for tensor in graph.initializer:
        if text(tensor.name) in values:
            raise ModelError(f"initializer {text(tensor.name)!r} is defined twice")
        array = tensor_to_array(tensor, base_dir)
        values[text(tensor.name)] = Value(text(tensor.name), BY_ONNX[tensor.data_type], array.shape, array)

    inputs, signature = [], {"inputs": [], "outputs": []}
    names = [text(vi.name) for vi in graph.input if text(vi.name) not in values]
    for vi in graph.input:
        name = text(vi.name)
        if name in values:
            continue  # an initializer listed as input: a weight, fixed at compile time
        obj = _graph_input(name, vi.type, bound)
        for item in elements(obj):
            if item.name != name:  # a sequence's element NAME[i]: registered so that no node may take the name
                if item.name in values:
                    raise ModelError(f"graph input {name!r}: its element's name {item.name!r} is taken")
                values[item.name] = item
        values[name] = obj
        inputs.extend(elements(obj))
        signature["inputs"].append(_entry(name, obj))
    unknown = sorted(set(bound) - set(names))
    if unknown:
        raise ShapeError(f"--input-shape names {unknown}, but the model's inputs are {names}")

    nodes = []
    ordered = _topological(graph.node, set(values))
    budget = [MAX_FOLDED_BYTES]
    expander = Expander(
        values,
        lambda proto: _import_node(proto, values, opsets, base_dir, budget),
        _topological,
        lambda tensor: tensor_to_array(tensor, base_dir),
        opsets.get("", 1),
    )
    for index, proto in enumerate(ordered):
        nodes.extend(expander.node(proto))
        if progress:
            progress(index + 1, len(ordered))

    outputs = []
    for vi in graph.output:
        name = text(vi.name)
        if name not in values:
            raise ModelError(f"graph output {name!r} is not produced by any node")
        obj = values[name]
        if isinstance(obj, Opt) and isinstance(obj.item, Value):  # a present optional tensor: output NAME
            del values[name]
            nodes.extend(expander.bind(name, obj.item))
            obj = Opt(values[name], "tensor")
        elif not isinstance(obj, Value):  # a sequence's elements become outputs NAME[0], NAME[1], ...
            items = elements(obj)
            for i, item in enumerate(items):
                if f"{name}[{i}]" in values:
                    raise ModelError(f"graph output {name!r}: its element's name '{name}[{i}]' is taken")
                nodes.extend(expander.bind(f"{name}[{i}]", item))
            obj = _renamed(obj, [values[f"{name}[{i}]"] for i in range(len(items))])
        outputs.extend(elements(obj))
        signature["outputs"].append(_entry(name, obj))
    plain = all(e["form"] == "tensor" for e in signature["inputs"] + signature["outputs"])
    return Graph(text(graph.name) or "model", inputs, outputs, nodes, opsets, None if plain else signature)


def _renamed(obj, items: list[Value]):
    """`obj` (a sequence or optional graph output) with its elements replaced by `items`, in order."""
    if isinstance(obj, Opt):
        return obj if obj.item is None else Opt(_renamed(obj.item, items), obj.kind)
    if isinstance(obj, Seq):
        return Seq(obj.dtype, list(items))
    return items[0]


def _entry(name: str, obj) -> dict:
    return {"name": name, "form": form_of(obj), "items": [v.name for v in elements(obj)]}


def _import_node(
    proto: onnx.NodeProto,
    values: dict[str, Value],
    opsets: Mapping[str, int],
    base_dir: Path | None,
    budget: list[int],
) -> Node:
    domain = "" if proto.domain in ("", "ai.onnx") else proto.domain
    where = f"node {proto.op_type} {text(proto.name)!r}"
    entry = registry.lookup(proto.op_type, domain, opsets[domain])
    assert entry is not None  # _check_supported ran first
    inputs = [values[name] if name else None for name in map(text, proto.input)]
    for name, v in zip(map(text, proto.input), inputs):
        if v is not None and not isinstance(v, Value):
            raise UnsupportedError(f"{where}: input {name!r} is a sequence or optional; the operator takes tensors")
    for v in inputs:
        if v is not None and v.dynamic_axes:
            raise UnsupportedError(
                f"{where} reads {v.name!r}, whose shape depends on the data ({v.producer.op if v.producer else '?'} "
                "output); mlcc supports such values only as graph outputs so far"
            )
    attrs = _attributes(proto, domain, opsets[domain], base_dir, where)
    node = Node(proto.op_type, inputs, [], attrs, text(proto.name), domain, opsets[domain])
    for name in map(text, proto.output):  # typed below; ops read the declared output count during inference
        if name and name in values:
            raise ModelError(f"{where}: output {name!r} is already defined elsewhere")
        node.outputs.append(Value(name, FLOAT32, ()))
        node.outputs[-1].producer = node
    try:
        inferred = entry.infer(node)
    except CompileTimeValueError as err:
        if err.sources is None and err.value_name in values:
            err.sources = runtime_sources(values[err.value_name])
        raise
    except MlccError:
        raise
    except _MALFORMED as err:
        raise ModelError(f"{where}: inputs or attributes are malformed ({type(err).__name__}: {err})") from None
    if len(inferred) < len(proto.output):
        raise ModelError(f"{where} declares {len(proto.output)} outputs; the operator has {len(inferred)}")
    for value, (dtype, shape) in zip(node.outputs, inferred):
        _check_dims(f"{where} output {value.name!r}", shape)
        value.dtype, value.shape = dtype, tuple(int(d) for d in shape)
        if value.nbytes > MAX_TENSOR_BYTES:
            raise ShapeError(
                f"{where} output {value.name!r} {dtype}{list(value.shape)} is larger than {MAX_TENSOR_BYTES >> 30} GiB"
            )
        if value.name:
            values[value.name] = value
    if not entry.strings and any(v is not None and v.dtype == STRING for v in [*node.inputs, *node.outputs]):
        raise UnsupportedError(f"{where}: string tensors are not supported by this operator")
    for value, axis in zip(node.outputs, entry.dynamic_axes(node)):
        value.dynamic_axes = axes_tuple(axis)
    if entry.foldable(node) and (entry.shape_only or all(v is None or v.data is not None for v in node.inputs)):
        budget[0] -= sum(v.nbytes for v in node.outputs)
        if budget[0] < 0:
            raise ShapeError(f"{where}: values computed at compile time exceed {MAX_FOLDED_BYTES >> 30} GiB in all")
        _evaluate(node, entry, where)
    return node


def _within_bound(shape: tuple[int, ...], value: Value) -> bool:
    return len(shape) == value.rank and all(
        d == b or (i in value.dynamic_axes and d <= b) for i, (d, b) in enumerate(zip(shape, value.shape))
    )


def _evaluate(node: Node, entry: registry.OpDef, where: str) -> None:
    """Compute outputs known at compile time (inputs all known, or the op reads shapes only)."""
    try:
        results = entry.reference(node, [v.data if v is not None else None for v in node.inputs])
    except MlccError:
        raise
    except (*_MALFORMED, MemoryError) as err:
        raise ModelError(f"{where}: cannot evaluate its constant inputs ({type(err).__name__}: {err})") from None
    for value, data in zip(node.outputs, results):
        data = np.require(np.asarray(data, dtype=value.dtype.np), requirements="C")
        if value.dynamic_axes and _within_bound(data.shape, value):
            value.shape, value.dynamic_axes = data.shape, ()  # known at compile time after all
        if data.shape != value.shape:
            raise ModelError(f"{where}: computes shape {list(data.shape)} where inference said {list(value.shape)}")
        value.data = data
