"""The CUDA backend: one __global__ kernel per distinct kernel, host code that uploads the weights once,
plans all intermediates into one device arena, and replays the whole run as a CUDA graph.

Graph inputs and outputs live in a device staging area (`io`) so the captured graph never changes: the
host API copies in and out of it, the async API copies device-to-device.
"""

from __future__ import annotations

import math

from ...errors import UnsupportedError
from ...ir.graph import Value
from ..program import Program, Step, _align
from .c import CBackend

BLOCK = 256
TILE = 64  # output tile of the tiled GEMM engine (templates/cuda/kernels/tile_gemm.cuh.j2), BLOCK threads each


def _total(step: Step) -> int:
    """Work items of a grid-stride kernel: the elements it writes (rows for row-wise kernels)."""
    k, p = step.kernel, step.kernel.params
    if "work_items" in p:  # a family that says how many grid-stride work items it has (rows, scatter updates)
        return p["work_items"]
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
    family_alias = {"pool_rows": "pool"}  # a thread per output element already: the general pool kernel

    def __init__(self, cuda_graph: bool = True, precision: str = "fp32") -> None:
        super().__init__()
        self.cuda_graph = cuda_graph
        self.precision = precision
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

    def strategy(self, step: Step) -> dict:
        """GEMM and convolution: which engine, at which precision (lower precisions only for float32)."""
        k, p = step.kernel, step.kernel.params
        if k.family not in ("gemm", "conv"):
            return {}
        precision = self.precision if p["ctype"] == "float" else "fp32"
        index = "int" if max(v.size for v in k.inputs + k.outputs) < 2**31 - 1 else "int64_t"
        if k.family == "conv":
            cg = p["C"] // p["group"]
            kk, mg = cg * math.prod(p["kernel"]), p["M"] // p["group"]
            return {"engine": "tiles" if kk >= 8 and mg >= 8 else "direct", "precision": precision, "index": index}
        return {"engine": "tiles", "precision": precision, "index": index}

    def launch(self, step: Step) -> str:
        k, p = step.kernel, step.kernel.params
        if self.strategy(step).get("engine") == "tiles":
            if k.family == "gemm":
                rows, cols, batch = p["M"], p["N"], math.prod(p["batch_dims"])
            else:
                rows, cols, batch = p["M"] // p["group"], math.prod(p["out"]), p["N"] * p["group"]
            grid = f"dim3({-(-cols // TILE)}, {-(-rows // TILE)}, {batch})"
            return f"<<<{grid}, {BLOCK}, 0, stream>>>"
        if k.family in ("softmax", "global_pool") or p.get("block_per_item"):
            return f"<<<{max(_total(step), 1)}, {BLOCK}, 0, stream>>>"
        blocks = max(1, min(-(-_total(step) // BLOCK), 65535 * 8))
        return f"<<<{blocks}, {BLOCK}, 0, stream>>>"

    def split_rows(self, k) -> int:
        return 0  # a CUDA kernel is parallel already

    def tensor_info(self, v: Value, output: bool = False) -> dict:
        return {**super().tensor_info(v, output), "io": self.io_offsets[id(v)]}

    def host_params(self, program: Program) -> dict:
        if program.uses_strings:
            raise UnsupportedError("the model has string tensors, which are supported on --target c only so far")
        if program.extents:
            step = next(s for s in program.steps if any(v.dynamic_axes for v in s.kernel.outputs))
            raise UnsupportedError(
                f"{step.node.op} {step.node.name!r}: outputs whose shape depends on the data are supported on "
                "--target c only so far"
            )
        io_bytes = self.plan_io(program)
        host = super().host_params(program)
        # Outputs that are inputs or repeated outputs already share their staging slot; constants are copied in.
        host["copies"] = [
            {**copy, "dst": self.io_offsets[id(v)]}
            for copy, (_, v) in zip(host["copies"], program.output_copies)
            if program.where(v).kind not in ("input", "output")
        ]
        return {**host, "io_bytes": io_bytes, "cuda_graph": self.cuda_graph, "precision": self.precision}
