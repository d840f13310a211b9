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
# Split K: where a GEMM's output tiles number fewer than SPLIT_TARGET blocks (about one per multiprocessor of an
# H100/H200, 132), K is split so that about that many run, each split summing at least SPLIT_MIN_TILES K tiles.
SPLIT_TARGET, SPLIT_MIN_TILES, SPLIT_MAX = 128, 4, 32
ROW_PER_BLOCK = 64  # row normalisations over rows this long run a block per row (shorter: a thread per row)


def split_k(tiles: int, k: int, bk: int) -> tuple[int, int]:
    """(splits, K tiles per split) for an engine launch of `tiles` output tiles over K = k in steps of bk;
    every split gets at least one K tile, and (1, all) where splitting does not pay."""
    k_tiles = -(-k // bk)
    splits = min(-(-SPLIT_TARGET // max(tiles, 1)), k_tiles // SPLIT_MIN_TILES, SPLIT_MAX)
    if tiles >= SPLIT_TARGET // 2 or splits < 2:
        return 1, k_tiles
    per = -(-k_tiles // splits)
    return -(-k_tiles // per), per


def _total(step: Step) -> int:
    """Work items of a grid-stride kernel: the elements it writes (rows for row-wise kernels)."""
    k, p = step.kernel, step.kernel.params
    if "work_items" in p:  # a family that says how many grid-stride work items it has (rows, scatter updates)
        return p["work_items"]
    if k.family == "elementwise":
        return math.prod(p["dims"])
    if k.family in ("softmax",):
        return p["outer"] * p["inner"]
    if k.family == "rownorm":
        return p["rows"]
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
        """Template parameters chosen per kernel: for GEMM and convolution the engine, its precision (lower
        precisions only for float32) and K split; for row normalisations whether a block takes each row."""
        k, p = step.kernel, step.kernel.params
        if k.family == "rownorm":
            return {"per_block": p["n"] >= ROW_PER_BLOCK}
        if k.family not in ("gemm", "conv"):
            return {}
        precision = self.precision if p["ctype"] == "float" else "fp32"
        index = "int" if max(v.size for v in k.inputs + k.outputs) < 2**31 - 1 else "int64_t"
        if k.family == "conv":
            cg = p["C"] // p["group"]
            kk, mg = cg * math.prod(p["kernel"]), p["M"] // p["group"]
            if kk < 8 or mg < 8:
                return {"engine": "direct", "precision": precision, "index": index}
        rows, cols, batch, depth = self.gemm_shape(step)
        tiles = -(-rows // TILE) * -(-cols // TILE) * batch
        splits, per = split_k(tiles, depth, 16 if precision == "fp32" else 32) if p["ctype"] == "float" else (1, 0)
        return {
            "engine": "tiles",
            "precision": precision,
            "index": index,
            "splits": splits,
            "split_kt": per,
            "sk_counters": -(-tiles // 64) * 64,  # one counter per output tile, then the partials (256-byte aligned)
            "sk_bytes": 0 if splits == 1 else (-(-tiles // 64) * 64 + tiles * splits * TILE * TILE) * 4,
        }

    @staticmethod
    def gemm_shape(step: Step) -> tuple[int, int, int, int]:
        """(rows, columns, batch, depth) of a gemm or conv kernel as the tiled engine runs it."""
        k, p = step.kernel, step.kernel.params
        if k.family == "gemm":
            return p["M"], p["N"], math.prod(p["batch_dims"]), p["K"]
        cg = p["C"] // p["group"]
        return p["M"] // p["group"], math.prod(p["out"]), p["N"] * p["group"], cg * math.prod(p["kernel"])

    def extra_params(self, step: Step) -> list[tuple[str, str]]:
        if self.strategy(step).get("splits", 1) > 1:
            return [("float *SK", "(float *)m->splitk")]  # split-K counters and partials (tile_gemm.cuh.j2)
        return []

    def launch(self, step: Step) -> str:
        k, p = step.kernel, step.kernel.params
        strategy = self.strategy(step)
        if strategy.get("engine") == "tiles":
            rows, cols, batch, _ = self.gemm_shape(step)
            grid = f"dim3({-(-cols // TILE) * strategy['splits']}, {-(-rows // TILE)}, {batch})"
            return f"<<<{grid}, {BLOCK}, 0, stream>>>"
        if strategy.get("per_block"):  # a block per row, sized to the row
            threads = 256 if p["n"] >= 1024 else 128 if p["n"] >= 256 else 64
            return f"<<<{min(max(_total(step), 1), 2**31 - 1)}, {threads}, 0, stream>>>"
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
        splitk = max((self.strategy(s).get("sk_bytes", 0) for s in program.steps), default=0)
        return {
            **host,
            "io_bytes": io_bytes,
            "splitk_bytes": splitk,
            "cuda_graph": self.cuda_graph,
            "precision": self.precision,
        }
