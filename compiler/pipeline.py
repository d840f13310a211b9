"""The ordered pass list per target and opt level. Read this file first.

-O0: the mandatory passes only: constant folding (which also turns compile-time values such as Shape of a
     static tensor into constants), type legalisation (float16/bfloat16 arithmetic in float32) and
     dead-code elimination.
-O1: + clean-up after folding: algebraic simplification (Identity, inference Dropout, no-op and cancelling
     Reshape/Transpose, exact Cast chains, x*1, x+0) and common-subexpression elimination; then
     canonicalisation: BatchNormalization and per-channel Mul/Add/Sub folded into Conv/Gemm weights,
     MatMul+Add into one op with a bias, and decomposed LayerNorm, GELU (erf, tanh), SiLU/Swish,
     HardSwish and Softmax recognised as single ops; last, a
     schedule that keeps peak live memory low (the memory planner, at every level, places intermediates
     best-fit in one arena and lets elementwise kernels write in place over an input that dies there).
-O2 (the default) and -O3: + layout (c target): Conv/Gemm/MatMul rewritten for the GEMM engine of the
     chosen --cpu (passes/pack_weights.py): weights packed at compile time, stride-1 convolutions direct on a
     padded input, depthwise convolutions and MatMul of computed operands on their own kernels; + fusion:
     chains of elementwise nodes become one kernel, and on the c target a Conv/Gemm/MatMul takes the
     elementwise group that reads its output as an epilogue.
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
from .passes.cse import eliminate_common_subexpressions
from .passes.dce import eliminate_dead_code
from .passes.fold import fold_constants
from .passes.fold_batchnorm import fold_batchnorm
from .passes.fuse import fuse_elementwise, fuse_epilogues
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
    "c": [("fuse_elementwise", fuse_elementwise), ("fuse_epilogues", fuse_epilogues)],
    "cuda": [("fuse_elementwise", fuse_elementwise)],  # the cuda conv/gemm templates take no epilogue yet
}

LAYOUT: dict[str, list[tuple[str, Pass]]] = {
    "c": [("pack_weights", pack_weights)],
    "cuda": [],  # the cuda kernels read weights in their ONNX layout
}
TARGET_AWARE = {"pack_weights"}  # passes called as fn(graph, cpu=ctx.cpu)

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
        1: CLEANUP + SCHEDULE,
        2: CLEANUP + LAYOUT[target] + FUSION[target] + SCHEDULE,
        3: CLEANUP + LAYOUT[target] + FUSION[target] + SCHEDULE,
    }
    for target in ("c", "cuda")
}


def passes_for(target: str, opt_level: int) -> list[tuple[str, Pass]]:
    if target not in PIPELINES:
        raise MlccError(f"target {target!r} has no pass pipeline yet")
    if opt_level not in PIPELINES[target]:
        raise MlccError(f"-O{opt_level} is not a valid level; use 0, 1, 2 or 3")
    return PIPELINES[target][opt_level]


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
