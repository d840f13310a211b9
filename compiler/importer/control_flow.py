"""Control flow (If, Loop, Scan) is resolved while importing, so the IR stays a flat graph of static shapes.

- If with a condition known at compile time imports only the branch taken. With a run-time condition both
  branches are imported and each output is selected with Where (if-conversion); the branches must then
  give outputs of the same type and shape.
- Loop is unrolled: its trip count and initial condition must be known at compile time (mlcc.backend
  specialises graph inputs that feed them), and the body's condition output must fold to a constant in
  every iteration (a for-loop, or a while-loop whose exit depends only on the counter or on constants).
  Scan outputs are stacked with Unsqueeze and Concat.
- Scan (opset 9 and later) is unrolled over its static sequence length: each step reads its slice of every
  scan input with Gather (from the end for reverse directions) and the scan outputs are stacked along
  their axes. Scan-8 (a leading batch axis on states and scan inputs) is unrolled per batch item and
  stacked back; its sequence_lens, where given, must be a constant saying every item is full length.

A body is imported once per iteration as ordinary nodes: every name the body defines gets a fresh prefix
(in nested subgraphs too), names it captures from enclosing scopes keep theirs. The total number of body
instances is capped (MAX_INSTANCES) so that a huge trip count is an error, not a runaway compile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import onnx
from onnx import AttributeProto, helper

from ..errors import CompileTimeValueError, ModelError, UnsupportedError
from ..ir.dtypes import BOOL, INT64
from ..ir.graph import Node, Value
from .sequences import SequenceOps, uses_sequences

CONTROL_FLOW = {"If", "Loop", "Scan"}
MAX_INSTANCES = 4096


def _text(s: str | bytes) -> str:
    return s.decode("utf-8", "surrogateescape") if isinstance(s, bytes) else s


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            yield a.g
        elif a.type == AttributeProto.GRAPHS:
            yield from a.graphs


def all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of `graph` and of the subgraphs nested in it."""
    for node in graph.node:
        yield node
        for g in subgraphs(node):
            yield from all_nodes(g)


def _defined(graph: onnx.GraphProto) -> set[str]:
    names = {_text(v.name) for v in graph.input} | {_text(t.name) for t in graph.initializer}
    return names | {_text(o) for n in graph.node for o in n.output if o}


def captured(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes."""
    own = _defined(graph)
    used = {_text(i) for n in graph.node for i in n.input if i}
    used |= {_text(o.name) for o in graph.output}
    for n in graph.node:
        for g in subgraphs(n):
            used |= captured(g)
    return used - own


def node_inputs(node: onnx.NodeProto) -> set[str]:
    """A node's inputs including the names its subgraphs capture (for ordering)."""
    names = {_text(i) for i in node.input if i}
    for g in subgraphs(node):
        names |= captured(g)
    return names


def runtime_sources(value: Value) -> list[str]:
    """The graph inputs (values with neither data nor producer) that `value` is computed from."""
    found, seen, todo = set(), set(), [value]
    while todo:
        v = todo.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if v.producer is not None:
            todo.extend(i for i in v.producer.inputs if i is not None and i.data is None)
        elif v.data is None:
            found.add(v.name)
    return sorted(found)


def _rename(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """Rename, in place and in every nested subgraph, each occurrence of a name in `mapping`."""

    def swap(s: str) -> str:
        return mapping.get(_text(s), _text(s))

    for v in [*graph.input, *graph.output]:
        v.name = swap(v.name)
    for t in graph.initializer:
        t.name = swap(t.name)
    for n in graph.node:
        n.input[:] = [swap(i) if i else i for i in n.input]
        n.output[:] = [swap(o) if o else o for o in n.output]
        for g in subgraphs(n):
            _rename(g, mapping)


class Expander(SequenceOps):
    """Imports control-flow nodes as flat nodes. `import_node` imports one ordinary node (registering its
    outputs in `values`), `order` sorts a node list topologically given the known names, `to_array` reads
    an initializer."""

    def __init__(
        self,
        values: dict[str, Value],
        import_node: Callable[[onnx.NodeProto], Node],
        order: Callable[[list[onnx.NodeProto], set[str]], list[onnx.NodeProto]],
        to_array: Callable[[onnx.TensorProto], np.ndarray],
        opset: int,
    ) -> None:
        self.values, self.import_node, self.order, self.to_array = values, import_node, order, to_array
        self.opset = opset  # of the default domain: the form of the nodes emitted here
        self.instances = 0
        self.serial = 0

    # -- helpers -------------------------------------------------------------------------------------------

    def fresh(self, hint: str) -> str:
        while True:
            self.serial += 1
            name = f"{hint}#{self.serial}"
            if name not in self.values:
                return name

    def const(self, array: np.ndarray, dtype) -> str:
        name = self.fresh("const")
        self.values[name] = Value(name, dtype, array.shape, array)
        return name

    def emit(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> tuple[Node, str]:
        out = output or self.fresh(op.lower())
        return self.import_node(helper.make_node(op, inputs, [out], **attrs)), out

    def name_of(self, value: Value) -> str:
        """A name under which `value` (a tensor, sequence or optional) is registered (registering it if needed)."""
        if isinstance(value, Value) and value.name and self.values.get(value.name) is value:
            return value.name
        name = self.fresh(getattr(value, "name", "") or "value")
        self.values[name] = value
        return name

    def node(self, proto: onnx.NodeProto) -> list[Node]:
        """Import one node of any kind."""
        domain = "" if proto.domain in ("", "ai.onnx") else proto.domain
        if domain == "" and proto.op_type in CONTROL_FLOW:
            return getattr(self, f"_{proto.op_type.lower()}")(proto)
        if domain == "" and uses_sequences(proto, self.values):
            return self.sequence_node(proto)
        return [self.import_node(proto)]

    def instance(self, graph: onnx.GraphProto, bindings: list[Value], owner: str) -> tuple[list[Node], list[str]]:
        """Import one copy of `graph` with its inputs bound to `bindings`; its nodes and output names."""
        self.instances += 1
        if self.instances > MAX_INSTANCES:
            raise UnsupportedError(
                f"{owner}: control flow would import more than {MAX_INSTANCES} copies of its bodies "
                "(mlcc unrolls loops at compile time)"
            )
        if len(bindings) != len(graph.input):
            raise ModelError(f"{owner}: the body takes {len(graph.input)} inputs, the node gives {len(bindings)}")
        body = onnx.GraphProto()
        body.CopyFrom(graph)
        prefix = self.fresh(owner)
        _rename(body, {name: f"{prefix}/{name}" for name in _defined(graph)})
        for vi, value in zip(body.input, bindings):
            self.values[_text(vi.name)] = value
        for t in body.initializer:
            array = self.to_array(t)
            self.values[_text(t.name)] = Value(_text(t.name), _dtype(t.data_type, owner), array.shape, array)
        nodes: list[Node] = []
        for proto in self.order(list(body.node), set(self.values)):
            nodes.extend(self.node(proto))
        outs = [_text(o.name) for o in body.output]
        for name in outs:
            if name not in self.values:
                raise ModelError(f"{owner}: body output {name!r} is not produced")
        return nodes, outs

    def finish(self, sources: list[str], targets: list[str]) -> list[Node]:
        """The node's own output names given to the values computed for them (Identity nodes for tensors)."""
        return [node for s, t in zip(sources, targets) for node in self.bind(t, self.values[s])]

    def known(self, name: str, what: str, owner: str) -> np.ndarray:
        v = self.values[name]
        if not isinstance(v, Value):
            raise ModelError(f"{owner}: {what} {name!r} is a sequence or optional, not a tensor")
        if v.data is None:
            err = CompileTimeValueError(
                f"{owner}: {what} {name!r} is computed at run time; mlcc unrolls control flow at compile time "
                "and needs it known",
                name,
            )
            err.sources = runtime_sources(v)
            raise err
        return v.data

    # -- the ops -------------------------------------------------------------------------------------------

    def _if(self, proto: onnx.NodeProto) -> list[Node]:
        owner = f"If {_text(proto.name)!r}"
        branches = {a.name: a.g for a in proto.attribute if a.type == AttributeProto.GRAPH}
        if set(branches) != {"then_branch", "else_branch"} or not proto.input:
            raise ModelError(f"{owner}: needs a condition and then_branch and else_branch graphs")
        cond = _text(proto.input[0])
        outputs = [_text(o) for o in proto.output]
        value = self.values[cond]
        if not isinstance(value, Value) or value.size != 1 or value.dtype != BOOL:
            raise ModelError(f"{owner}: the condition must be a single bool tensor")
        if value.data is not None:
            taken = branches["then_branch" if bool(value.data.reshape(-1)[0]) else "else_branch"]
            nodes, outs = self.instance(taken, [], owner)
            if len(outs) != len(outputs):
                raise ModelError(f"{owner}: the branch gives {len(outs)} outputs for {len(outputs)}")
            return nodes + self.finish(outs, outputs)
        then_nodes, then_outs = self.instance(branches["then_branch"], [], owner)
        else_nodes, else_outs = self.instance(branches["else_branch"], [], owner)
        if not len(then_outs) == len(else_outs) == len(outputs):
            raise ModelError(f"{owner}: the branches give {len(then_outs)} and {len(else_outs)} outputs")
        nodes = then_nodes + else_nodes
        scalar, c = self.emit("Reshape", [cond, self.const(np.zeros(0, np.int64), INT64)])
        nodes.append(scalar)
        for t, e, out in zip(then_outs, else_outs, outputs):
            nodes += self.select(c, self.values[t], self.values[e], owner, out)
        return nodes

    def _loop(self, proto: onnx.NodeProto) -> list[Node]:
        owner = f"Loop {_text(proto.name)!r}"
        body = next((a.g for a in proto.attribute if a.name == "body"), None)
        if body is None:
            raise ModelError(f"{owner}: has no body")
        ins = [_text(i) for i in proto.input]
        if len(ins) < 2:
            raise ModelError(f"{owner}: needs the inputs M and cond (either may be empty)")
        trip = int(self.known(ins[0], "trip count M", owner).reshape(-1)[0]) if ins[0] else None
        keep = bool(self.known(ins[1], "condition", owner).reshape(-1)[0]) if ins[1] else True
        if trip is None and not ins[1]:
            raise ModelError(f"{owner}: neither a trip count nor a condition: the loop never ends")
        carried = [self.values[n] for n in ins[2:]]
        n_scan = len(body.output) - 1 - len(carried)
        if n_scan < 0:
            raise ModelError(f"{owner}: the body gives {len(body.output)} outputs for {len(carried)} carried values")
        nodes: list[Node] = []
        scans: list[list[str]] = [[] for _ in range(n_scan)]
        i = 0
        while keep and (trip is None or i < trip):
            counter = self.values[self.const(np.array(i, np.int64), INT64)]
            flag = self.values[self.const(np.array(keep), BOOL)]
            body_nodes, outs = self.instance(body, [counter, flag, *carried], owner)
            nodes += body_nodes
            cond_out = self.values[outs[0]]
            if cond_out.data is None:
                raise UnsupportedError(
                    f"{owner}: the loop condition is computed from run-time data; mlcc unrolls loops at "
                    "compile time and needs it to fold to a constant"
                )
            keep = bool(cond_out.data.reshape(-1)[0])
            carried = [self.values[o] for o in outs[1 : 1 + len(carried)]]
            for k, o in enumerate(outs[1 + len(carried) :]):
                scans[k].append(o)
            i += 1
        outputs = [_text(o) for o in proto.output]
        nodes += self.finish([self.name_of(v) for v in carried], outputs[: len(carried)])
        for k, out in enumerate(outputs[len(carried) :]):
            if not out:
                continue
            if not scans[k]:
                raise UnsupportedError(f"{owner}: a loop that runs zero times has scan outputs of unknown shape")
            nodes += self._stack(scans[k], 0, out)
        return nodes

    def _stack(self, parts: list[str], axis: int, out: str) -> list[Node]:
        nodes, pieces = [], []
        for p in parts:
            if self.opset < 13:  # axes became an input in opset 13
                node, name = self.emit("Unsqueeze", [p], axes=[axis])
            else:
                node, name = self.emit("Unsqueeze", [p, self.const(np.array([axis], np.int64), INT64)])
            nodes.append(node)
            pieces.append(name)
        nodes.append(self.emit("Concat", pieces, out, axis=axis)[0])
        return nodes

    def _scan(self, proto: onnx.NodeProto) -> list[Node]:
        owner = f"Scan {_text(proto.name)!r}"
        body = next((a.g for a in proto.attribute if a.name == "body"), None)
        attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute if a.type != AttributeProto.GRAPH}
        if body is None or "num_scan_inputs" not in attrs:
            raise ModelError(f"{owner}: needs a body and num_scan_inputs")
        m = int(attrs["num_scan_inputs"])
        ins = [_text(i) for i in proto.input]
        if self.opset < 9:
            return self._scan8(proto, owner, body, attrs, m, ins)
        n = len(ins) - m
        if n < 0 or len(body.input) != len(ins):
            raise ModelError(f"{owner}: {len(ins)} inputs, {m} scan inputs and a body of {len(body.input)} inputs")
        in_axes = [int(a) for a in attrs.get("scan_input_axes", [0] * m)]
        in_dirs = [int(d) for d in attrs.get("scan_input_directions", [0] * m)]
        k = len(body.output) - n
        out_axes = [int(a) for a in attrs.get("scan_output_axes", [0] * k)]
        out_dirs = [int(d) for d in attrs.get("scan_output_directions", [0] * k)]
        if len(out_axes) != k or len(out_dirs) != k:
            raise ModelError(f"{owner}: scan_output_axes/directions need {k} values")
        nodes, states, scans = self._unroll(owner, body, ins[:n], ins[n:], in_axes, in_dirs)
        outputs = [_text(o) for o in proto.output]
        nodes += self.finish(states, outputs[:n])
        for j, out in enumerate(outputs[n:]):
            if out:
                nodes += self._stack_scan(owner, scans[j], out_axes[j], out_dirs[j], out)
        return nodes

    def _unroll(self, owner, body, state_names, x_names, in_axes, in_dirs):
        """The body unrolled over the scan inputs `x_names` (scanned along in_axes, reversed where in_dirs):
        (nodes, the final states' names, per scan output the names of its per-step parts)."""
        xs = [self.values[i] for i in x_names]
        in_axes = [a + x.rank if a < 0 else a for a, x in zip(in_axes, xs)]
        lengths = {x.shape[a] for a, x in zip(in_axes, xs) if 0 <= a < x.rank}
        if len(lengths) != 1 or len(in_axes) != len(xs) or len(in_dirs) != len(xs):
            raise ModelError(f"{owner}: scan inputs disagree on the sequence length or the axes")
        steps = lengths.pop()
        n = len(state_names)
        states = [self.values[i] for i in state_names]
        nodes: list[Node] = []
        scans: list[list[str]] = [[] for _ in range(len(body.output) - n)]
        for t in range(steps):
            slices = []
            for x, a, d in zip(x_names, in_axes, in_dirs):
                index = self.const(np.array(steps - 1 - t if d else t, np.int64), INT64)
                node, name = self.emit("Gather", [x, index], axis=a)
                nodes.append(node)
                slices.append(self.values[name])
            body_nodes, outs = self.instance(body, [*states, *slices], owner)
            nodes += body_nodes
            states = [self.values[o] for o in outs[:n]]
            for j, o in enumerate(outs[n:]):
                scans[j].append(o)
        return nodes, [self.name_of(v) for v in states], scans

    def _stack_scan(self, owner, parts, axis, direction, out) -> list[Node]:
        if not parts:
            raise UnsupportedError(f"{owner}: a scan over zero steps has scan outputs of unknown shape")
        parts = parts[::-1] if direction else parts
        rank = self.values[parts[0]].rank + 1
        return self._stack(parts, axis + rank if axis < 0 else axis, out)

    def _scan8(self, proto, owner, body, attrs, m, ins) -> list[Node]:
        """Scan-8: input 0 is sequence_lens (optional), then the states and the scan inputs, all with a
        leading batch axis (scan inputs scanned along axis 1). Unrolled batch item by batch item and
        stacked back; sequence_lens, when given, must be a constant that says every item is full length."""
        n = len(ins) - 1 - m
        if n < 0 or len(body.input) != n + m:
            raise ModelError(f"{owner}: {len(ins)} inputs, {m} scan inputs and a body of {len(body.input)} inputs")
        dirs = [int(d) for d in attrs.get("directions", [0] * m)]
        xs = [self.values[i] for i in ins[1 + n :]]
        batch = {v.shape[0] for v in [*xs, *(self.values[i] for i in ins[1 : 1 + n])] if v.rank >= 1}
        if len(batch) != 1 or any(x.rank < 2 for x in xs):
            raise ModelError(f"{owner}: Scan-8 states and scan inputs need one leading batch axis")
        b, steps = batch.pop(), xs[0].shape[1] if xs else 0
        lens = self.values.get(ins[0]) if ins[0] else None
        if lens is not None and (lens.data is None or np.any(np.asarray(lens.data) != steps)):
            raise UnsupportedError(f"{owner}: Scan-8 with sequence_lens other than the full length is not supported")
        nodes: list[Node] = []
        finals: list[list[str]] = [[] for _ in range(n)]
        scans: list[list[str]] = [[] for _ in range(len(body.output) - n)]
        for item in range(b):
            index = self.const(np.array(item, np.int64), INT64)
            picked = []
            for name in ins[1:]:
                node, sub = self.emit("Gather", [name, index], axis=0)
                nodes.append(node)
                picked.append(sub)
            body_nodes, states, parts = self._unroll(owner, body, picked[:n], picked[n:], [0] * m, dirs)
            nodes += body_nodes
            for j, sname in enumerate(states):
                finals[j].append(sname)
            for j, p in enumerate(parts):
                stacked = self.fresh(f"scan8_{j}")
                nodes += self._stack_scan(owner, p, 0, 0, stacked)
                scans[j].append(stacked)
        outputs = [_text(o) for o in proto.output]
        for j, out in enumerate(outputs):
            if out:
                nodes += self._stack(finals[j] if j < n else scans[j - n], 0, out)
        return nodes


def _dtype(code: int, owner: str):
    from ..ir.dtypes import BY_ONNX

    if code not in BY_ONNX:
        raise UnsupportedError(f"{owner}: initializer element type code {code} is not supported")
    return BY_ONNX[code]
