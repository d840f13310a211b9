"""Static memory planning: every intermediate gets an offset in one arena, from its lifetime.

Lifetimes are [first write, last read] in kernel order. Views (passes/views.py) come first: a value
stored inside another shares its tree's buffer, at its byte offset there, and the buffer lives from the
first write of any of its values to the last read of any. Then three steps:
  1. In-place reuse: an "elementwise" kernel may write its output over an input that dies at that kernel
     (same shape and dtype, read at exactly the index it stores, contiguously, over the whole tensor, and
     not a graph input/output/constant). The two values then share one buffer whose lifetime is the union.
  2. Placement: buffers are placed one by one in a greedy order (longest-lived first, largest first, or
     largest size x lifetime first), each in the best-fitting gap between the placed buffers whose lifetimes
     intersect its own (the smallest gap it fits, else on top); a short seeded local search then reorders
     around the buffer that sets the arena's top while that helps, and the smallest arena wins.
  3. Bounds: `lower_bound_bytes` is the most bytes of buffers live at one kernel (sizes rounded up to ALIGN,
     in-place pairs counted once), which no placement can beat; `naive_bytes` gives every value its own buffer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InternalError
from ..ir.graph import Value
from ..ops.common import contiguous_strides, index_expr
from ..ops.registry import Kernel
from .views import View, root_of

ALIGN = 64
SEARCH_TRIALS = 600  # local-search steps after the greedy placements, at most
SEARCH_WORK = 3_000_000  # ... and at most this much placement work (buffers + lifetime overlaps, per trial)
INF = 1 << 62


@dataclass
class MemoryPlan:
    offsets: dict[int, int] = field(default_factory=dict)  # id(value) -> byte offset
    arena_bytes: int = 0
    naive_bytes: int = 0  # every intermediate in its own buffer
    lower_bound_bytes: int = 0  # the most bytes live at one step


@dataclass
class _Buffer:
    size: int
    start: int
    end: int
    values: list[int]  # id(value) of every value stored here (more than one after views or in-place reuse)
    offsets: dict[int, int] = field(default_factory=dict)  # id(value) -> byte offset in the buffer (0 if absent)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(
    steps: list[tuple[list[Value], list[Value]]],
    pinned: set[int],
    kernels: Sequence[Kernel | None] | None = None,
    views: dict[int, View] | None = None,
) -> MemoryPlan:
    """Plan the arena for `steps` ((reads, writes) per kernel, in order); `pinned` values are not in it.

    `kernels[t]` is the kernel of step t, consulted for in-place reuse (none without them); `views` are the
    values stored inside others (passes/views.py find_views), whose copies are no longer among the steps.
    """
    if kernels is None:
        kernels = [None] * len(steps)
    views = views or {}
    members = {id(v): v for view in views.values() for v in (view.child, view.parent)}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    values: dict[int, Value] = dict(members)
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
    home = _view_trees(views, members, first, last)
    buffers = _share_in_place(steps, values, first, last, kernels, home)
    plan = MemoryPlan()
    plan.naive_bytes = sum(_align(max(v.nbytes, 1)) for v in values.values())
    plan.lower_bound_bytes = _peak_live(buffers, len(steps))
    offsets = _best_placement(buffers, plan.lower_bound_bytes)
    for buf, offset in zip(buffers, offsets):
        for key in buf.values:
            plan.offsets[key] = offset + buf.offsets.get(key, 0)
        plan.arena_bytes = max(plan.arena_bytes, offset + buf.size)
    return plan


def inplace_input(kernel: Kernel) -> int | None:
    """The index of an input the kernel's single output may overwrite, element for element; None if none.

    "elementwise" loops where the output is stored contiguously over its whole extent and every load of
    that input uses the very index of the store, so each element is read before it is overwritten; and
    conv hosts whose epilogue adds a residual they can accumulate onto in place (ops/fused.py _residual).
    """
    if len(kernel.outputs) != 1:
        return None
    residual = (kernel.params.get("epilogue") or {}).get("residual")
    if residual is not None:  # a conv adding onto a residual operand (ops/fused.py _residual)
        i = len(kernel.inputs) - len(kernel.params["epilogue"]["loads"]) + residual
        x, y = kernel.inputs[i], kernel.outputs[0]
        alone = sum(v is x for v in kernel.inputs) == 1
        return i if alone and x.shape == y.shape and x.dtype == y.dtype and not x.dynamic_axes else None
    if kernel.family != "elementwise":
        return None
    y, params = kernel.outputs[0], kernel.params
    dims = params.get("dims")
    store, loads = params.get("store"), params.get("loads", [])
    if dims is None or len(loads) != len(kernel.inputs) or y.dynamic_axes:
        return None
    size = 1
    for d in dims:
        size *= d
    if size != y.size or store != index_expr(0, contiguous_strides(dims)):
        return None
    lets = " ".join(params.get("lets", []))
    for i, x in enumerate(kernel.inputs):
        if x is y or x.shape != y.shape or x.dtype != y.dtype or x.dynamic_axes:
            continue
        uses = [j for j, u in enumerate(kernel.inputs) if u is x]
        if all(loads[j]["index"] == store and f"in{j}[" not in lets for j in uses):
            return i
    return None


def _view_trees(
    views: dict[int, View], members: dict[int, Value], first: dict[int, int], last: dict[int, int]
) -> dict[int, _Buffer]:
    """One buffer per tree of views, holding each of its `members` at its offset, live while any of them is."""
    trees: dict[int, _Buffer] = {}
    home: dict[int, _Buffer] = {}
    for key, v in members.items():
        root, offset = root_of(views, v)
        buf = trees.setdefault(id(root), _Buffer(0, first.get(key, INF), last.get(key, -1), []))
        buf.start = min(buf.start, first.get(key, INF))
        buf.end = max(buf.end, last.get(key, -1))
        buf.values.append(key)
        buf.offsets[key] = offset
        home[key] = buf
    for buf in trees.values():
        if buf.start == INF:
            raise InternalError("a tree of views that no kernel writes")
        buf.end = max(buf.end, buf.start)
    return home


def _share_in_place(
    steps: list[tuple[list[Value], list[Value]]],
    values: dict[int, Value],
    first: dict[int, int],
    last: dict[int, int],
    kernels: Sequence[Kernel | None],
    home: dict[int, _Buffer],
) -> list[_Buffer]:
    """One buffer per value (or tree of views: `home`), except that an in-place output joins the buffer of
    the input it overwrites, at that input's offset."""
    buffers: list[_Buffer] = list({id(b): b for b in home.values()}.values())
    for t, ((_, writes), kernel) in enumerate(zip(steps, kernels)):
        i = inplace_input(kernel) if kernel is not None else None
        if i is not None:
            x, y = id(kernel.inputs[i]), id(kernel.outputs[0])
            if (
                x in home
                and home[x].end == t
                and y in values
                and y not in home
                and first[y] == t
                and not _aliased(kernel, i, home, values)
            ):
                buf = home[x]
                buf.end = max(buf.end, last[y])
                buf.values.append(y)
                buf.offsets[y] = buf.offsets.get(x, 0)
                home[y] = buf
        for key in (id(v) for v in writes):
            if key in values and key not in home:
                home[key] = _Buffer(0, first[key], last[key], [key])
                buffers.append(home[key])
    for buf in buffers:
        buf.size = _align(max(buf.offsets.get(k, 0) + max(values[k].nbytes, 1) for k in buf.values))
    return buffers


def _aliased(kernel: Kernel, i: int, home: dict[int, _Buffer], values: dict[int, Value]) -> bool:
    """Whether another input of `kernel` shares bytes with input i through views (a reshape of it, or the
    concatenation holding it): writing the output over input i would change what that input reads."""
    x = kernel.inputs[i]
    buf = home[id(x)]
    lo = buf.offsets.get(id(x), 0)
    hi = lo + x.nbytes
    for v in kernel.inputs:
        if v is None or v is x or home.get(id(v)) is not buf:
            continue
        at = buf.offsets.get(id(v), 0)
        if at < hi and lo < at + values[id(v)].nbytes:
            return True
    return False


def _peak_live(buffers: list[_Buffer], n_steps: int) -> int:
    """The most bytes of buffers live at one step (a sweep over lifetime starts and ends)."""
    delta = [0] * (n_steps + 1)
    for buf in buffers:
        delta[buf.start] += buf.size
        delta[buf.end + 1] -= buf.size
    live = peak = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return peak


def _best_placement(buffers: list[_Buffer], floor: int) -> list[int]:
    """Offsets from greedy best-fit placements, each improved by a short local search; the lowest top wins.

    A search step takes the buffer that sets the arena's top or one whose lifetime meets it, moves it to a
    random earlier place in the order, and keeps the result unless the top grows. The search is seeded, so a
    model always gets the same plan; it stops at `floor` (the lower bound) or when its budget is spent, a
    number of placements that shrinks as the buffers and their lifetime overlaps grow.
    """
    n = len(buffers)
    conflicts = _conflicts(buffers)
    starts = [
        sorted(range(n), key=lambda i: (buffers[i].start - buffers[i].end, -buffers[i].size)),
        sorted(range(n), key=lambda i: (-buffers[i].size, buffers[i].start)),
        sorted(range(n), key=lambda i: (-(buffers[i].end - buffers[i].start + 1) * buffers[i].size, buffers[i].start)),
    ]
    work = n + sum(len(c) for c in conflicts)
    trials = min(SEARCH_TRIALS, SEARCH_WORK // max(work, 1)) // len(starts)
    rng = random.Random(0)
    best_top, best = -1, [0] * n
    for order in starts:
        offsets = _place(buffers, order, conflicts)
        top = _top(buffers, offsets)
        for _ in range(trials):
            if top <= floor:
                break
            i = rng.choice([i for i in range(n) if offsets[i] + buffers[i].size == top])
            i = rng.choice([i, *conflicts[i]])
            pos = order.index(i)
            trial = order[:pos] + order[pos + 1 :]
            trial.insert(rng.randrange(pos + 1), i)
            trial_offsets = _place(buffers, trial, conflicts)
            trial_top = _top(buffers, trial_offsets)
            if trial_top <= top:  # sideways moves too: they let the search walk across plateaus
                top, order, offsets = trial_top, trial, trial_offsets
        if best_top < 0 or top < best_top:
            best_top, best = top, offsets
        if best_top <= floor:
            break
    return best


def _top(buffers: list[_Buffer], offsets: list[int]) -> int:
    return max((o + b.size for o, b in zip(offsets, buffers)), default=0)


def _conflicts(buffers: list[_Buffer]) -> list[list[int]]:
    """For each buffer, the buffers whose lifetimes intersect its own (a sweep over start times)."""
    conflicts: list[list[int]] = [[] for _ in buffers]
    active: list[int] = []
    for i in sorted(range(len(buffers)), key=lambda i: buffers[i].start):
        active = [j for j in active if buffers[j].end >= buffers[i].start]
        for j in active:
            conflicts[i].append(j)
            conflicts[j].append(i)
        active.append(i)
    return conflicts


def _place(buffers: list[_Buffer], order: list[int], conflicts: list[list[int]]) -> list[int]:
    """Best fit: each buffer goes in the smallest free gap among the placed buffers it overlaps in time."""
    offsets = [-1] * len(buffers)
    for i in order:
        size = buffers[i].size
        busy = sorted((offsets[j], offsets[j] + buffers[j].size) for j in conflicts[i] if offsets[j] >= 0)
        best_offset, best_waste, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= size and (best_waste is None or gap - size < best_waste):
                best_offset, best_waste = cursor, gap - size
            cursor = max(cursor, hi)
        offsets[i] = cursor if best_offset is None else best_offset
    return offsets
