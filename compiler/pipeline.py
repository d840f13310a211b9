"""The ordered pass list per target and opt level. Read this file first.

-O0: the mandatory passes only: constant folding (which also turns compile-time values such as Shape of a
     static tensor into constants), type legalisation (float16/bfloat16 arithmetic in float32) and
     dead-code elimination.
-O1: + clean-up after folding: algebraic simplification (Identity, inference Dropout, no-op and cancelling
     Reshape/Transpose, exact Cast chains, x*1, x+0) and common-subexpression elimination; then
     canonicalisation: BatchNormalization and per-channel Mul/Add/Sub folded into Conv/Gemm weights,
     MatMul+Add into one op with a bias, and decomposed LayerNorm, GELU (erf, tanh), SiLU/Swish,
     HardSwish and Softmax recognised as single ops (on the c target, which has a kernel for it, also
     scaled-dot-product attention: passes/attention.py); last, a
     schedule that keeps peak live memory low (the memory planner, at every level, places intermediates
     best-fit in one arena and lets elementwise kernels write in place over an input that dies there; on
     the c target it also stores Concat inputs, Split outputs and reshapes inside the value they are
     copied from or to, and leaves out the copy: passes/views.py).
-O2 (the default) and -O3: + layout (c target): Conv/Gemm/MatMul rewritten for the GEMM engine of the
     chosen --cpu (passes/pack_weights.py): weights packed at compile time, stride-1 convolutions direct on a
     padded input, depthwise convolutions and MatMul of computed operands on their own kernels; + fusion:
     chains of elementwise nodes become one kernel, and on the c target a Conv/Gemm/MatMul takes the
     elementwise group that reads its output as an epilogue, and a reduction the elementwise group that
     makes its input as a prologue.
Every level gives the same numbers within the tests' tolerances (tests/unit/test_pass_*.py, tests/models).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .context import PassContext
from .errors import MlccError
from .ir.graph import Graph
from .ir.verify import verify
from .ops.registry import infer_node
from .passes.attention import recognize_attention
from .passes.cse import eliminate_common_subexpressions
from .passes.dce import eliminate_dead_code
from .passes.fold import fold_constants
from .passes.fold_batchnorm import fold_batchnorm
from .passes.fuse import fuse_elementwise, fuse_epilogues, fuse_prologues
from .passes.legalize_types import legalize_types
from .passes.pack_weights import pack_weights
from .passes.recognize import recognize
from .passes.schedule import schedule_nodes
from .passes.simplify import simplify

Pass = Callable[[Graph], Graph]

MANDATORY: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),
    ("legalize_types", legalize_types),
    ("eliminate_dead_code", eliminate_dead_code),
]

FUSION: dict[str, list[tuple[str, Pass]]] = {
    "c": [
        ("fuse_elementwise", fuse_elementwise),
        ("fuse_epilogues", fuse_epilogues),
        ("fuse_prologues", fuse_prologues),
    ],
    "cuda": [("fuse_elementwise", fuse_elementwise), ("fuse_epilogues", fuse_epilogues)],
}

LAYOUT: dict[str, list[tuple[str, Pass]]] = {
    "c": [("pack_weights", pack_weights)],
    "cuda": [],  # the cuda kernels read weights in their ONNX layout
}
TARGET_AWARE = {"pack_weights", "recognize_attention"}  # passes called as fn(graph, cpu=ctx.cpu)

# Canonicalisation into ops only a target has kernels for.
TARGET_CANON: dict[str, list[tuple[str, Pass]]] = {
    "c": [("recognize_attention", recognize_attention)],
    "cuda": [],  # no attention kernel yet: MatMul, Softmax, MatMul
}

CLEANUP: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),
    ("simplify", simplify),
    ("eliminate_common_subexpressions", eliminate_common_subexpressions),
    ("fold_batchnorm", fold_batchnorm),
    ("recognize", recognize),
    ("legalize_types", legalize_types),
    ("eliminate_dead_code", eliminate_dead_code),
]

SCHEDULE: list[tuple[str, Pass]] = [("schedule_nodes", schedule_nodes)]  # last: after every rewrite

PIPELINES: dict[str, dict[int, list[tuple[str, Pass]]]] = {
    target: {
        0: MANDATORY,
        1: CLEANUP + TARGET_CANON[target] + SCHEDULE,
        2: CLEANUP + TARGET_CANON[target] + LAYOUT[target] + FUSION[target] + SCHEDULE,
        3: CLEANUP + TARGET_CANON[target] + LAYOUT[target] + FUSION[target] + SCHEDULE,
    }
    for target in ("c", "cuda")
}


def passes_for(target: str, opt_level: int) -> list[tuple[str, Pass]]:
    if target not in PIPELINES:
        raise MlccError(f"target {target!r} has no pass pipeline yet")
    if opt_level not in PIPELINES[target]:
        raise MlccError(f"-O{opt_level} is not a valid level; use 0, 1, 2 or 3")
    return PIPELINES[target][opt_level]


def check_disabled(target: str, names: tuple[str, ...] | list[str]) -> set[str]:
    """The passes `names` (--disable-pass), each an optional pass of the target's pipeline."""
    mandatory = {name for name, _ in MANDATORY}
    optional = sorted({name for name, _ in passes_for(target, 3)} - mandatory)
    for name in names:
        if name in mandatory:
            raise MlccError(
                f"--disable-pass {name}: the pass is mandatory; the optional ones are: {', '.join(optional)}"
            )
        if name not in optional:
            raise MlccError(f"--disable-pass {name}: no such pass for --target {target}; the optional ones are: "
                            f"{', '.join(optional)}")  # fmt: skip
    return set(names)


def run_pipeline(graph: Graph, target: str, ctx: PassContext) -> Graph:
    """Run the target's passes in order with hooks, timings and (if asked) verification after each."""
    if ctx.verify:
        verify(graph, infer_node)
    mandatory = {name for name, _ in MANDATORY}
    for index, (name, fn) in enumerate(passes_for(target, ctx.opt_level)):
        if name in ctx.disabled and name not in mandatory:
            continue
        for hook in ctx.before:
            hook(name, index, graph)
        start = time.perf_counter()
        graph = fn(graph, cpu=ctx.cpu) if name in TARGET_AWARE else fn(graph)
        ctx.timings.append({"pass": name, "seconds": time.perf_counter() - start, "nodes": len(graph.nodes)})
        if ctx.verify:
            verify(graph, infer_node)
        for hook in ctx.after:
            hook(name, index, graph)
    return graph
