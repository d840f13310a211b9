"""The CUDA backend: one __global__ kernel per distinct kernel, host code that uploads the weights once,
plans all intermediates into one device arena, and replays the whole run as a CUDA graph.

Graph inputs and outputs live in a device staging area (`io`) so the captured graph never changes: the
host API copies in and out of it, the async API copies device-to-device.
"""

from __future__ import annotations

import math

from ...ir.graph import Value
from ..program import Program, Step, _align
from .c import CBackend

BLOCK = 256
GEMM_TILE = 16


def _total(step: Step) -> int:
    """Work items of a grid-stride kernel: the elements it writes (rows for row-wise kernels)."""
    k, p = step.kernel, step.kernel.params
    if k.family == "elementwise":
        return math.prod(p["dims"])
    if k.family in ("softmax",):
        return p["outer"] * p["inner"]
    if k.family == "global_pool":
        return p["outer"]
    return k.outputs[0].size


class CudaBackend(CBackend):
    target = "cuda"
    source_suffix = ".cu"
    kernel_qualifier = "static __global__ void __launch_bounds__(256)"

    def __init__(self, cuda_graph: bool = True) -> None:
        super().__init__()
        self.cuda_graph = cuda_graph
        self.io_offsets: dict[int, int] = {}

    def plan_io(self, program: Program) -> int:
        """Offsets of inputs and outputs in the device staging area; returns its size."""
        offset = 0
        for v in list(program.graph.inputs) + list(program.graph.outputs):
            if id(v) not in self.io_offsets:
                self.io_offsets[id(v)] = offset
                offset += _align(max(v.nbytes, 1))
        return offset

    def pointer(self, program: Program, v: Value) -> str:
        loc, ct = program.where(v), v.dtype.c
        if loc.kind in ("input", "output"):
            return f"({ct} *)(m->io + {self.io_offsets[id(v)]})"
        return super().pointer(program, v).replace("(const ", "(")

    def launch(self, step: Step) -> str:
        k = step.kernel
        if k.family == "gemm":
            p = k.params
            batch = math.prod(p["batch_dims"])
            grid = f"dim3({-(-p['N'] // GEMM_TILE)}, {-(-p['M'] // GEMM_TILE)}, {batch})"
            return f"<<<{grid}, dim3({GEMM_TILE}, {GEMM_TILE}), 0, stream>>>"
        if k.family in ("softmax", "global_pool"):
            return f"<<<{max(_total(step), 1)}, {BLOCK}, 0, stream>>>"
        blocks = max(1, min(-(-_total(step) // BLOCK), 65535 * 8))
        return f"<<<{blocks}, {BLOCK}, 0, stream>>>"

    def tensor_info(self, v: Value) -> dict:
        return {**super().tensor_info(v), "io": self.io_offsets[id(v)]}

    def host_params(self, program: Program) -> dict:
        io_bytes = self.plan_io(program)
        host = super().host_params(program)
        # Outputs that are inputs or repeated outputs already share their staging slot; constants are copied in.
        host["copies"] = [
            {**copy, "dst": self.io_offsets[id(v)]}
            for copy, (_, v) in zip(host["copies"], program.output_copies)
            if program.where(v).kind not in ("input", "output")
        ]
        return {**host, "io_bytes": io_bytes, "cuda_graph": self.cuda_graph}
