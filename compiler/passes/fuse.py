"""Elementwise fusion: chains (in-trees) of elementwise nodes become one Fused node, run as one kernel.

A node joins a group when it is one elementwise loop over its own output shape (compiler/ops/fused.py
single_loop), its output is no graph output, and every node reading it is in that same group, has the same
output shape and reads it element for element (no broadcast, no offset). External operands may broadcast
freely. A group's only value used outside it is its root's output, so it runs where its root ran, and every
member's other inputs are ready by then. Groups of one node stay as they are.

Epilogue fusion (the c target) then moves a Conv, Gemm or MatMul into the elementwise group (or single
elementwise node) that alone reads its output element for element: the host kernel applies the group to
each output run (a conv plane, a gemm row) as soon as it has computed it (templates/c/kernels/epilogue.j2).
The group's other operands must be addressable per run: same shape as the output, broadcast along the
run, or per run (a per-channel bias or BatchNormalization parameter).

Prologue fusion (the c target) last moves an elementwise group (or single node) into the reduction that
alone reads its output (ReduceSum/Mean/Max/..., ArgMax/ArgMin, Softmax, LogSoftmax, the row norms,
GlobalAverage/MaxPool): the reduction computes each element of its input from the group's operands where it
reads it, so the group's output is never stored. A reduction that reads its input more than once takes only
groups of cheap ops (compiler/ops/fused.py CHEAP), which it recomputes on each pass.
"""

from __future__ import annotations

from ..errors import InternalError
from ..ir.graph import Graph, Node, Value
from ..ops.fused import (
    FUSED_DOMAIN,
    compose,
    host_kernel,
    host_trailing,
    prologue_host,
    reads_elementwise,
    run_index,
    single_loop,
    takes_prologue,
)


def fuse_elementwise(graph: Graph) -> Graph:
    consumers = graph.consumers()
    outputs = {id(v) for v in graph.outputs}
    loops = {id(n): k for n in graph.nodes if (k := single_loop(n)) is not None}
    group: dict[int, int] = {}  # id(node) -> id(its group's root)

    for node in reversed(graph.nodes):  # consumers first: a producer joins the group all its readers are in
        group[id(node)] = id(node)
        out = node.outputs[0] if len(node.outputs) == 1 else None
        if id(node) not in loops or out is None or id(out) in outputs:
            continue
        readers = consumers.get(id(out), [])
        roots = {group.get(id(r)) for r in readers}
        if len(roots) != 1 or None in roots:
            continue
        if all(
            id(r) in loops and r.outputs[0].shape == out.shape and reads_elementwise(loops[id(r)], out) for r in readers
        ):
            group[id(node)] = roots.pop()

    members: dict[int, list[Node]] = {}
    for node in graph.nodes:
        members.setdefault(group[id(node)], []).append(node)
    nodes = []
    for node in graph.nodes:
        if group[id(node)] != id(node):
            continue  # runs inside its root's fused node
        body = members[id(node)]
        nodes.append(node if len(body) == 1 else _fused(body))
    graph.nodes = nodes
    return graph


def fuse_epilogues(graph: Graph) -> Graph:
    consumers = graph.consumers()
    outputs = {id(v) for v in graph.outputs}
    absorbed: set[int] = set()
    replaced: dict[int, Node] = {}
    for node in graph.nodes:
        members = node.attrs["body"] if node.op == "Fused" and node.domain == FUSED_DOMAIN else [node]
        if (node.op != "Fused" and single_loop(node) is None) or host_kernel(members[0]) is not None:
            continue
        out = node.outputs[0]
        for v in node.inputs:
            host = v.producer if v is not None else None
            if host is None or id(host) in absorbed or id(v) in outputs or len(consumers.get(id(v), [])) != 1:
                continue
            kernel = host_kernel(host)
            if kernel is None or v.shape != out.shape or v.dtype != out.dtype:
                continue
            try:
                chain = compose(node, members, {id(v): "acc"})
            except InternalError:  # the host's output is read with broadcasting somewhere: not an epilogue
                continue
            trailing = host_trailing(kernel)
            if any(run_index(out.shape, st, trailing, off) is None for st, off in zip(chain.strides, chain.offsets)):
                continue
            absorbed.add(id(host))
            replaced[id(node)] = _fused([host, *members])
            break
    graph.nodes = [replaced.get(id(n), n) for n in graph.nodes if id(n) not in absorbed]
    return graph


def fuse_prologues(graph: Graph) -> Graph:
    consumers = graph.consumers()
    outputs = {id(v) for v in graph.outputs}
    absorbed: set[int] = set()
    replaced: dict[int, Node] = {}
    for node in graph.nodes:
        kernel = prologue_host(node)
        v = node.inputs[0] if kernel is not None else None
        group = v.producer if v is not None else None
        if group is None or id(v) in outputs or len(consumers.get(id(v), [])) != 1:
            continue
        if group.op == "Fused" and group.domain == FUSED_DOMAIN:
            members = group.attrs["body"]
            if host_kernel(members[0]) is not None or prologue_host(members[-1]) is not None:
                continue  # a conv/gemm with its epilogue, or a reduction with its prologue
        elif single_loop(group) is not None:
            members = [group]
        else:
            continue
        if not takes_prologue(kernel, members):
            continue
        absorbed.add(id(group))
        replaced[id(node)] = _fused([*members, node])
    graph.nodes = [replaced.get(id(n), n) for n in graph.nodes if id(n) not in absorbed]
    return graph


def _fused(body: list[Node]) -> Node:
    inside = {id(o) for n in body for o in n.outputs}
    inputs: dict[int, Value] = {}
    for n in body:
        for v in n.inputs:
            if v is not None and id(v) not in inside:
                inputs.setdefault(id(v), v)
    out = body[-1].outputs[0]
    fused = Node("Fused", list(inputs.values()), [out], {"body": body}, body[-1].name, FUSED_DOMAIN, 1)
    out.producer = fused
    return fused
