"""Scheduling: reorder graph.nodes into a topological order that keeps peak live memory low.

Memory model (what the arena holds): every node output except the graph's outputs (the caller's buffers);
graph inputs and constants live elsewhere. A value is live from its producer until its last consumer has
run; while a node runs its inputs and its outputs are live together.

Two candidate orders are built and simulated, and the pass keeps the one with the lowest peak, the
incoming order winning ties (so an order that is already good is left alone):
  greedy  a list scheduler: of the ready nodes, run the one that adds the fewest live bytes (outputs
          allocated minus inputs it frees); ties go to the node made ready most recently, which keeps a
          chain together instead of opening several branches at once.
  dfs     a post-order walk from the outputs that visits the most memory-hungry operand subtree first
          (Sethi-Ullman style, made for trees; on a DAG shared operands make it a guess).
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.graph import Graph, Node, Value


def schedule_nodes(graph: Graph) -> Graph:
    """Reorder graph.nodes to lower peak live memory; the result is a topological order of the same nodes."""
    candidates = [graph.nodes, greedy_order(graph), dfs_order(graph)]
    graph.nodes = min(candidates, key=lambda order: peak_bytes(graph, order))
    return graph


def _arena_sizes(graph: Graph) -> Callable[[Value], int]:
    outputs = {id(v) for v in graph.outputs}
    return lambda v: 0 if id(v) in outputs or v.producer is None else v.nbytes


def _distinct_inputs(node: Node) -> list[Value]:
    seen: dict[int, Value] = {}
    for v in node.inputs:
        if v is not None:
            seen.setdefault(id(v), v)
    return list(seen.values())


def _use_counts(graph: Graph) -> dict[int, int]:
    """id(value) -> number of nodes reading it."""
    uses: dict[int, int] = {}
    for node in graph.nodes:
        for v in _distinct_inputs(node):
            uses[id(v)] = uses.get(id(v), 0) + 1
    return uses


def peak_bytes(graph: Graph, order: list[Node]) -> int:
    """The most bytes live at once when the nodes run in `order` (the memory model above)."""
    size = _arena_sizes(graph)
    remaining = _use_counts(graph)
    live = peak = 0
    for node in order:
        born = sum(size(v) for v in node.outputs)
        peak = max(peak, live + born)
        live += born
        for v in _distinct_inputs(node):
            remaining[id(v)] -= 1
            if remaining[id(v)] == 0:
                live -= size(v)
        live -= sum(size(v) for v in node.outputs if id(v) not in remaining)
    return peak


def _dependencies(graph: Graph) -> tuple[dict[int, int], dict[int, list[Node]]]:
    """(node id -> number of producer nodes it waits on, node id -> nodes waiting on it)."""
    producers = {id(v): n for n in graph.nodes for v in n.outputs}
    waits: dict[int, int] = {}
    users: dict[int, list[Node]] = {}
    for node in graph.nodes:
        deps = {id(producers[id(v)]): producers[id(v)] for v in _distinct_inputs(node) if id(v) in producers}
        waits[id(node)] = len(deps)
        for dep in deps.values():
            users.setdefault(id(dep), []).append(node)
    return waits, users


def greedy_order(graph: Graph) -> list[Node]:
    """List scheduling: always run the ready node with the smallest (bytes allocated - bytes freed)."""
    size = _arena_sizes(graph)
    remaining = _use_counts(graph)
    waits, users = _dependencies(graph)

    def growth(node: Node) -> int:
        freed = sum(size(v) for v in _distinct_inputs(node) if remaining[id(v)] == 1)
        return sum(size(v) for v in node.outputs) - freed

    ready = [n for n in graph.nodes if waits[id(n)] == 0]
    stamp = {id(n): -i for i, n in enumerate(ready)}  # later-readied first; original order among the first
    clock = 0
    order: list[Node] = []
    while ready:
        best = min(ready, key=lambda n: (growth(n), -stamp[id(n)]))
        ready.remove(best)
        order.append(best)
        for v in _distinct_inputs(best):
            remaining[id(v)] -= 1
        for user in users.get(id(best), []):
            waits[id(user)] -= 1
            if waits[id(user)] == 0:
                clock += 1
                stamp[id(user)] = clock
                ready.append(user)
    assert len(order) == len(graph.nodes), "the graph has a cycle"
    return order


def dfs_order(graph: Graph) -> list[Node]:
    """Post-order from the outputs; at each node the operand subtree with the largest peak goes first."""
    size = _arena_sizes(graph)
    producers = {id(v): n for n in graph.nodes for v in n.outputs}
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    need: dict[int, int] = {}  # id(node) -> estimated peak of its subtree

    for node in graph.nodes:  # already topological, so every operand's estimate is known
        deps = _operand_nodes(node, producers)
        held = peak = 0
        for dep in sorted(deps, key=lambda d: -need[id(d)]):
            peak = max(peak, held + need[id(dep)])
            held += sum(size(v) for v in dep.outputs)
        need[id(node)] = max(peak, held + sum(size(v) for v in node.outputs))

    order: list[Node] = []
    done: set[int] = set()
    roots = [producers[id(v)] for v in graph.outputs if id(v) in producers]
    roots += graph.nodes  # nodes no output depends on still run, after the rest
    for root in roots:
        _visit(root, producers, need, index, done, order)
    return order


def _operand_nodes(node: Node, producers: dict[int, Node]) -> list[Node]:
    seen: dict[int, Node] = {}
    for v in _distinct_inputs(node):
        if id(v) in producers:
            seen.setdefault(id(producers[id(v)]), producers[id(v)])
    return list(seen.values())


def _visit(
    root: Node, producers: dict[int, Node], need: dict[int, int], index: dict[int, int], done: set[int], order: list
) -> None:
    """Iterative post-order (deep graphs would overflow Python's recursion limit)."""
    if id(root) in done:
        return
    stack: list[tuple[Node, list[Node]]] = []

    def push(node: Node) -> None:
        deps = [d for d in _operand_nodes(node, producers) if id(d) not in done]
        deps.sort(key=lambda d: (need[id(d)], -index[id(d)]))  # popped from the end: largest first
        stack.append((node, deps))

    push(root)
    while stack:
        node, deps = stack[-1]
        while deps and id(deps[-1]) in done:
            deps.pop()
        if deps:
            push(deps.pop())
            continue
        stack.pop()
        if id(node) not in done:
            done.add(id(node))
            order.append(node)
