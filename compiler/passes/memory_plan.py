"""Static memory planning: every intermediate gets an offset in one arena, from its lifetime.

Greedy by size: tensors are placed largest first at the lowest offset that does not overlap any
already placed tensor whose lifetime intersects. Lifetimes are [first write, last read] in kernel order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Value

ALIGN = 64


@dataclass
class MemoryPlan:
    offsets: dict[int, int] = field(default_factory=dict)  # id(value) -> byte offset
    arena_bytes: int = 0
    naive_bytes: int = 0  # every intermediate in its own buffer
    lower_bound_bytes: int = 0  # the most bytes live at one step


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(steps: list[tuple[list[Value], list[Value]]], pinned: set[int]) -> MemoryPlan:
    """Plan the arena for `steps` ((reads, writes) per kernel, in order); `pinned` values are not in it."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    values: dict[int, Value] = {}
    for t, (reads, writes) in enumerate(steps):
        for v in writes:
            if id(v) in pinned or v.is_const:
                continue
            values[id(v)] = v
            first.setdefault(id(v), t)
            last[id(v)] = max(last.get(id(v), t), t)
        for v in reads:
            if id(v) in values:
                last[id(v)] = t
    plan = MemoryPlan()
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    order = sorted(values, key=lambda k: (-_align(values[k].nbytes), first[k]))
    for key in order:
        size = _align(max(values[key].nbytes, 1))
        busy = sorted((o, s) for o, s, start, end in placed if not (end < first[key] or last[key] < start))
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first[key], last[key]))
        plan.offsets[key] = offset
        plan.arena_bytes = max(plan.arena_bytes, offset + size)
        plan.naive_bytes += size
    for t in range(len(steps)):
        live = sum(s for _, s, start, end in placed if start <= t <= end)
        plan.lower_bound_bytes = max(plan.lower_bound_bytes, live)
    return plan
