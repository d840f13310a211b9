"""Options of one compile and the pass context (opt level, disabled passes, hooks, verification)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .cpu import CpuTarget
from .ir.graph import Graph

Hook = Callable[[str, int, Graph], None]  # (pass name, pass index, graph)
Progress = Callable[[str, int, int], None]  # (step, done, total)

TARGETS = ("c", "cuda")
WEIGHT_MODES = ("embed", "external")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


@dataclass
class PassContext:
    opt_level: int = 2
    disabled: set[str] = field(default_factory=set)
    before: list[Hook] = field(default_factory=list)
    after: list[Hook] = field(default_factory=list)
    verify: bool = False
    timings: list[dict] = field(default_factory=list)  # per pass: name, seconds, nodes after
    cpu: CpuTarget | None = None  # c target: the instruction set and GEMM tiles the layout pass packs for


@dataclass
class CompileOptions:
    out_dir: Path
    target: str = "c"
    name: str = "model"
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    output_bounds: Mapping[str, Sequence[int]] = field(default_factory=dict)  # data-dependent outputs' bounds
    opt_level: int = 2
    weights: str = "embed"
    build: bool = True
    verify: bool = False
    jobs: int = 2
    force: bool = False  # write into a non-empty directory mlcc did not create
    cuda_graph: bool = True  # cuda: replay the run as a CUDA graph captured at create time
    precision: str = "fp32"  # cuda: arithmetic of GEMM and convolution (tensor cores below fp32)
    gemm: str = "own"  # cuda: GEMM and convolution on mlcc's kernels ("own") or cuBLAS ("cublas")
    cpu: str = "generic"  # c: instruction set of the generated code (compiler/cpu.py)
    progress: Progress | None = None
    dump_ir: Path | None = None  # write the IR text after import and after every pass into this directory
    disabled_passes: tuple[str, ...] = ()  # optional passes of the pipeline not to run (compiler/pipeline.py)
    viz: Path | None = None  # draw the final graph into this .dot, .svg or .html file

    def flags(self) -> dict:
        """The options that change generated code; hashed into the model hash and printed in headers."""
        return {
            "target": self.target,
            "name": self.name,
            "input_shapes": {k: _plain(v) for k, v in sorted(self.input_shapes.items())},
            **(
                {"output_bounds": {k: _plain(v) for k, v in sorted(self.output_bounds.items())}}
                if self.output_bounds
                else {}
            ),
            "opt_level": self.opt_level,
            "weights": self.weights,
            **({"cuda_graph": self.cuda_graph, "precision": self.precision} if self.target == "cuda" else {}),
            **({"gemm": self.gemm} if self.gemm != "own" else {}),
            **({"cpu": self.cpu} if self.target == "c" and self.cpu != "generic" else {}),
            **({"disabled_passes": sorted(set(self.disabled_passes))} if self.disabled_passes else {}),
        }


def _plain(shape):
    """An --input-shape binding as JSON: dims, a list of element shapes (a sequence), or None (absent)."""
    if shape is None:
        return None
    return [_plain(d) if isinstance(d, (list, tuple)) else int(d) for d in shape]
