"""Fused: a chain (an in-tree) of elementwise nodes run as one kernel, made by compiler/passes/fuse.py.

A Fused node (domain "mlcc") keeps its original nodes in attrs["body"], in order, the last one producing the
node's output. Each body node lowers, on its own, to one "elementwise" loop (Kernel.fusable, see
common.loop_kernel) over the output's shape; fusion composes those loops into one: the fused kernel loads
every external operand once, computes each intermediate value into a local (`const T tK = ...;`, rounded to
its own element type exactly as the separate kernel would have stored it) and stores only the last result.
One pass over memory instead of one per node, and bit-identical numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InternalError
from ..ir.graph import Node, Value
from .common import contiguous_strides, flat_index, loop_kernel
from .registry import INTERNAL_DOMAIN, Kernel, OpDef, lookup, register

FUSED_DOMAIN = INTERNAL_DOMAIN
_OPERAND = re.compile(r"\bv(\d+)\b")


def single_loop(node: Node) -> Kernel | None:
    """The node's lowering if it is one elementwise loop over its output's shape written contiguously."""
    entry = lookup(node.op, node.domain, node.version)
    if entry is None or len(node.outputs) != 1 or entry.dynamic_axes(node):
        return None
    try:
        kernels = entry.lower(node)
    except Exception:  # noqa: BLE001 - a node that cannot lower here is simply not fused
        return None
    if len(kernels) != 1 or kernels[0].fusable is None or kernels[0].outputs != node.outputs:
        return None
    f, out = kernels[0].fusable, node.outputs[0]
    if f["lets"] or f["dims"] != list(out.shape) or f["out_offset"] != 0:
        return None
    if _walk(f["dims"], f["out_strides"]) != _walk(f["dims"], contiguous_strides(out.shape)):
        return None
    return kernels[0]


def _walk(dims: list[int], strides: list[int]) -> list[int]:
    """Strides as they matter: an axis of extent 1 is never stepped along."""
    return [s if d != 1 else 0 for d, s in zip(dims, strides)]


def reads_elementwise(kernel: Kernel, v: Value) -> bool:
    """Whether `kernel` reads every use of `v` element for element (same index as its output, no broadcast)."""
    f = kernel.fusable
    assert f is not None
    same = _walk(f["dims"], contiguous_strides(f["dims"]))
    uses = [i for i, x in enumerate(kernel.inputs) if x is v]
    return bool(uses) and all(_walk(f["dims"], f["in_strides"][i]) == same and f["in_offsets"][i] == 0 for i in uses)


def _rename(expr: str, names: list[str]) -> str:
    """`expr` with its operands v0, v1, ... replaced by names[0], names[1], ..."""
    return _OPERAND.sub(lambda m: names[int(m.group(1))], expr)


def kernel_name(body: list[Node]) -> str:
    ops = [str(n.attrs.get("source_op", n.op)).lower() for n in body]
    return "fused_" + ("_".join(ops) if len(ops) <= 3 else f"{ops[0]}_{ops[1]}_{len(ops) - 2}more")


@register("Fused", since=1, domain=FUSED_DOMAIN)
class Fused(OpDef):
    def infer(self, node: Node):
        out = node.attrs["body"][-1].outputs[0]
        return [(out.dtype, out.shape)]

    def reference(self, node: Node, inputs):
        known = {id(v): x for v, x in zip(node.inputs, inputs)}
        for b in node.attrs["body"]:
            entry = lookup(b.op, b.domain, b.version)
            assert entry is not None
            (result,) = entry.reference(b, [None if v is None else known.get(id(v), v.data) for v in b.inputs])
            known[id(b.outputs[0])] = np.asarray(result)
        return [known[id(node.outputs[0])]]

    def lower(self, node: Node) -> list[Kernel]:
        body: list[Node] = node.attrs["body"]
        out = node.outputs[0]
        host = host_kernel(body[0])
        reducer = prologue_host(body[-1]) if host is None and len(body) > 1 else None
        if reducer is not None:
            return [with_prologue(node, body, reducer)]
        if host is None:
            chain = compose(node, body, {})
            args = (chain.operands, out, chain.expr, list(out.shape), chain.strides, None, chain.offsets, 0, chain.lets)
            return [loop_kernel(kernel_name(body), *args)]
        chain = compose(node, body[1:], {id(body[0].outputs[0]): "acc"})
        loads = []
        for v, st, off in zip(chain.operands, chain.strides, chain.offsets):
            index = run_index(out.shape, st, host_trailing(host), off)
            if index is None:
                raise InternalError(f"fused node {node.name!r}: {v.name!r} cannot be read in {host.family}'s epilogue")
            loads.append({"ctype": v.dtype.c, "index": index, "per_element": "j" in index})
        names = host.names()
        n_in = len(host.inputs)
        epilogue = {"loads": loads, "lets": chain.lets, "expr": chain.expr, "run": run_length(host)}
        epilogue["residual"] = _residual(host, body, chain)
        epilogue["heavy"] = bool(_CALL.search(" ".join(chain.lets + [chain.expr])))
        host.params = {**host.params, "epilogue": epilogue}
        if "clamp" in host.params:
            host.params["clamp"] = in_register_clamp(body, epilogue, residual_ok=host.family == "conv_packed")
        host.arg_names = names[:n_in] + [f"E{i}" for i in range(len(chain.operands))] + names[n_in:]
        host.inputs = host.inputs + chain.operands
        host.outputs = [out]
        host.name = kernel_name(body)
        return [host]


def in_register_clamp(body: list[Node], epilogue: dict, residual_ok: bool = False) -> tuple[str, str] | None:
    """The bounds (C float expressions) of an epilogue that is one Relu or one Clip with constant scalar bounds
    on a float32 result, which a host may apply in registers with the bias (conv_packed.c.j2, conv_pmajor.c.j2:
    acc < lo ? lo : acc, then > hi ? hi, NaN passing as in the separate ops); else None. With `residual_ok`
    also the residual Add (_residual) before it, or alone (bounds +-INFINITY): the host then adds the residual
    in registers where the planner stored Y over it (conv_packed.c.j2's `in_place`)."""
    residual = epilogue["residual"] is not None
    if residual and not residual_ok:
        return None
    head = body[1 + residual :]  # what follows the residual Add
    if not head and residual and body[1].outputs[0].dtype.c == "float":
        return "-INFINITY", "INFINITY"
    if len(head) != 1 or head[0].domain != "":
        return None
    op, out = head[0], head[0].outputs[0]
    if out.dtype.c != "float" or op.inputs[0] is not body[residual].outputs[0]:
        return None
    if op.op == "Relu":
        return "0.0f", "INFINITY"
    if op.op != "Clip":
        return None
    if op.version < 11:
        bounds = [op.attr("min", -3.4028234663852886e38), op.attr("max", 3.4028234663852886e38)]
    else:
        bounds = [op.input(1), op.input(2)]
        for i, v in enumerate(bounds):
            if v is not None:
                if not v.is_const or v.size != 1:
                    return None
                bounds[i] = float(np.asarray(v.data).reshape(-1)[0])
    if any(b is not None and not math.isfinite(b) for b in bounds):
        return None
    lo, hi = (repr(float(np.float32(b))) + "f" if b is not None else None for b in bounds)
    return lo or "-INFINITY", hi or "INFINITY"


# A function call in an epilogue (exp, tanh, erf: SiLU, GELU, Sigmoid): tens of operations per element, which
# hosts that can run their epilogue as a pass of its own over longer runs do (templates/c/kernels/
# conv_packed.c.j2): in short runs per tile its long dependency chains overlap little
_CALL = re.compile(r"\b[A-Za-z_]\w*\s*\(")


# Hosts that can add their result onto a residual already in the output (Y stored over the operand's
# buffer by the memory planner, passes/memory_plan.py inplace_input): per K block they accumulate into Y.
RESIDUAL_HOSTS = {"conv_packed", "conv_direct", "conv_pmajor"}


def _residual(host: Kernel, body: list[Node], chain: Chain) -> int | None:
    """The epilogue operand the host may find already in its output: body = [host, Add/Sum(acc, E), ...]
    with E of the output's shape read element for element, used nowhere else in the epilogue and not an
    input of the host itself. Where the planner then stores Y over E, the host accumulates into Y and the
    epilogue reads E as 0 (the template's `in_place`); elsewhere nothing changes."""
    if host.family not in RESIDUAL_HOSTS or len(body) < 2:
        return None
    add, acc = body[1], body[0].outputs[0]
    if add.domain != "" or add.op not in ("Add", "Sum") or len(add.inputs) != 2 or acc not in add.inputs:
        return None
    e = add.inputs[1] if add.inputs[0] is acc else add.inputs[0]
    out = body[-1].outputs[0]
    if e is acc or e.shape != acc.shape or e.shape != out.shape or e.dtype != out.dtype or e.is_const:
        return None
    if any(x is e for x in host.inputs):
        return None
    slots = [k for k, v in enumerate(chain.operands) if v is e]
    dims = list(out.shape)
    if len(slots) != 1 or chain.offsets[slots[0]]:
        return None
    if _walk(dims, list(chain.strides[slots[0]])) != _walk(dims, list(contiguous_strides(out.shape))):
        return None
    k = slots[0]
    text = " ".join(chain.lets + [chain.expr])
    return k if len(re.findall(rf"\bv{k}\b", text)) == 1 else None


@dataclass
class Chain:
    """Elementwise nodes composed into one expression over `operands` (read with `strides`, `offsets`)."""

    operands: list[Value] = field(default_factory=list)
    strides: list[list[int]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    lets: list[str] = field(default_factory=list)
    expr: str = ""


def compose(node: Node, body: list[Node], local: dict[int, str]) -> Chain:
    """Compose the elementwise loops of `body` (in order; the last gives the result). `local` names values
    already in C locals (a host kernel's accumulator); each intermediate becomes a local tK."""
    chain, slots, local = Chain(), {}, dict(local)
    for k, b in enumerate(body):
        kernel = single_loop(b)
        if kernel is None:
            raise InternalError(f"fused node {node.name!r}: {b.op} {b.name!r} is not one elementwise loop")
        f = kernel.fusable
        names = []
        for i, v in enumerate(kernel.inputs):
            if id(v) in local:
                if not reads_elementwise(kernel, v):
                    raise InternalError(f"fused node {node.name!r}: {v.name!r} is not read element for element")
                names.append(local[id(v)])
                continue
            key = (id(v), tuple(f["in_strides"][i]), f["in_offsets"][i])
            if key not in slots:
                slots[key] = len(chain.operands)
                chain.operands.append(v)
                chain.strides.append(f["in_strides"][i])
                chain.offsets.append(f["in_offsets"][i])
            names.append(f"v{slots[key]}")
        chain.expr = _rename(f["expr"], names)
        out = b.outputs[0]
        if k < len(body) - 1:
            local[id(out)] = f"t{k}"
            chain.lets.append(f"const {out.dtype.c} t{k} = ({out.dtype.c})({chain.expr});")
    return chain


# Kernel families that take an elementwise epilogue: each computes its output in contiguous runs (a conv
# output plane, a gemm output row) and applies the epilogue to a run while it is still in cache.
HOSTS = {"conv", "gemm", "conv_packed", "conv_direct", "conv_pmajor", "gemm_packed", "conv_dw"}


def _single_kernel(node: Node, families: set[str]) -> Kernel | None:
    """The node's lowering if it is one kernel of one of `families` writing the node's single output."""
    entry = lookup(node.op, node.domain, node.version)
    if entry is None or len(node.outputs) != 1:
        return None
    try:
        kernels = entry.lower(node)
    except Exception:  # noqa: BLE001 - a node that cannot lower here is simply not fused
        return None
    if len(kernels) != 1 or kernels[0].family not in families or kernels[0].outputs != node.outputs:
        return None
    return kernels[0]


def host_kernel(node: Node) -> Kernel | None:
    """The node's single conv or gemm kernel, if it has one."""
    return _single_kernel(node, HOSTS)


def host_trailing(kernel: Kernel) -> int:
    """How many trailing output axes one run of the host covers."""
    return kernel.outputs[0].rank - 2 if kernel.family.startswith("conv") else 1


def run_length(kernel: Kernel) -> int:
    shape = kernel.outputs[0].shape
    return math.prod(shape[len(shape) - host_trailing(kernel) :])


def run_index(dims: tuple[int, ...], strides: list[int], trailing: int, offset: int) -> str | None:
    """C text indexing an epilogue operand inside a run, or None where the operand's layout does not allow
    it. In the host template, `r` is the run's number (runs are consecutive, in row-major order over the
    leading axes), `j` the element within it (runs have L elements: base = r * L)."""
    if offset:
        return None
    dims, strides = list(dims), _walk(list(dims), strides)
    lead, trail = dims[: len(dims) - trailing], dims[len(dims) - trailing :]
    s_lead, s_trail = strides[: len(lead)], strides[len(lead) :]
    run = math.prod(trail)
    if s_trail == _walk(trail, contiguous_strides(trail)) and any(d != 1 for d in trail):
        inner, scale = "j", run
    elif not any(s_trail):
        inner, scale = "", 1
    else:
        return None
    outer = ""
    if any(s_lead):
        q = next(q for q in range(1, len(lead) + 1) if not any(s_lead[: len(lead) - q]))  # trailing lead axes read
        suffix = lead[len(lead) - q :]
        if s_lead[len(lead) - q :] != _walk(suffix, [scale * c for c in contiguous_strides(suffix)]):
            return None
        rows = math.prod(suffix)
        outer = "r" if q == len(lead) else f"(r % {rows})"
        outer = outer if scale == 1 else f"{outer} * {scale}"
    return " + ".join(t for t in (outer, inner) if t) or "0"


# Kernel families that take an elementwise prologue: reductions reading their input X (kernel input 0)
# element by element through the template macro x_at (templates/c/kernels/prologue.j2). A prologue is
# recomputed on every pass a kernel makes over X, so a kernel of several passes takes only cheap ones.
PROLOGUE_HOSTS = {"reduce", "rownorm", "softmax", "global_pool"}
CHEAP = {"Abs", "Add", "And", "Cast", "Clip", "Div", "Equal", "Greater", "Identity", "LeakyRelu", "Less", "Max",
         "Min", "Mul", "Neg", "Not", "Or", "Relu", "Sub", "Sum", "Where"}  # fmt: skip


def input_passes(kernel: Kernel) -> int:
    """How many times a prologue host reads each element of X."""
    p = kernel.params
    if kernel.family == "reduce":
        return 2 if p["premax"] else 1
    if kernel.family == "softmax":
        return 3 if p["log"] else 2
    if kernel.family == "rownorm":
        return 3 if p["mode"] == "standard" else 2
    return 1


def prologue_host(node: Node) -> Kernel | None:
    """The node's single reduction kernel, if it reads the node's first input as X and can take a prologue."""
    k = _single_kernel(node, PROLOGUE_HOSTS) if node.inputs and node.inputs[0] is not None else None
    if k is None or not k.inputs or k.inputs[0] is not node.inputs[0] or k.inputs.count(node.inputs[0]) != 1:
        return None
    return k


def takes_prologue(kernel: Kernel, members: list[Node]) -> bool:
    """Whether the reduction `kernel` should compute the elementwise group `members` as it reads X."""
    return input_passes(kernel) == 1 or all(m.op in CHEAP and m.domain == "" for m in members)


def with_prologue(node: Node, body: list[Node], host: Kernel) -> Kernel:
    """The reduction `host` computing its input from the elementwise group body[:-1] as it reads it: its X
    argument becomes the group's operands P0, P1, ... and a helper that computes X's element i from them."""
    chain = compose(node, body[:-1], {})
    x = host.inputs[0]
    loads = [
        {"ctype": v.dtype.c, "index": flat_index(list(x.shape), st, off)}
        for v, st, off in zip(chain.operands, chain.strides, chain.offsets)
    ]
    names = host.names()
    n_in = len(host.inputs)
    host.params = {
        **host.params,
        "prologue": {"ctype": x.dtype.c, "loads": loads, "lets": chain.lets, "expr": chain.expr},
    }
    host.arg_names = names[1:n_in] + [f"P{i}" for i in range(len(chain.operands))] + names[n_in:]
    host.inputs = host.inputs[1:] + chain.operands
    host.name = kernel_name(body)
    return host
