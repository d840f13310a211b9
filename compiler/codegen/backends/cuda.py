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
CUBLAS_WORKSPACE = 32 << 20  # bytes cuBLAS may use per call (NVIDIA's advice for Hopper), set once at create
INT_MAX = 2**31 - 1  # cuBLAS takes sizes, leading dimensions and batch counts as int


def split_k(tiles: int, k: int, bk: int) -> tuple[int, int]:
    """(splits, K tiles per split) for an engine launch of `tiles` output tiles over K = k in steps of bk;
    every split gets at least one K tile, and (1, all) where splitting does not pay."""
    k_tiles = -(-k // bk)
    splits = min(-(-SPLIT_TARGET // max(tiles, 1)), k_tiles // SPLIT_MIN_TILES, SPLIT_MAX)
    if tiles >= SPLIT_TARGET // 2 or splits < 2:
        return 1, k_tiles
    per = -(-k_tiles // splits)
    return -(-k_tiles // per), per


def _linear_batch(dims: list[int], strides: list[int]) -> int | None:
    """The one stride that steps an operand through all batch dims in order (0: broadcast over them all), or
    None where its batch strides are not one arithmetic sequence (cuBLAS's strided batch takes one)."""
    if not dims:
        return 0
    for k in range(len(dims) - 1):
        if strides[k] != strides[k + 1] * dims[k + 1]:
            return None
    return strides[-1]


def _column_major(rows: int, cols: int, rs: int, cs: int) -> tuple[str, int] | None:
    """(op, leading dimension) under which cuBLAS reads a row-major operand [rows, cols] with element strides
    (rs, cs) in place: op N where its rows are contiguous, op T where its columns are; None where neither is,
    or where the stride does not cover a column-major row (a broadcast row or column)."""
    if cs == 1:
        op, ld, need = "CUBLAS_OP_N", rs if rows > 1 else cols, cols
    elif rs == 1:
        op, ld, need = "CUBLAS_OP_T", cs if cols > 1 else rows, rows
    else:
        return None
    return (op, ld) if ld >= need else None


def _cublas_gemm(p: dict) -> dict | None:
    """How cuBLAS (column-major) computes a gemm kernel's row-major Y[M, N] = A[M, K] B[K, N]: as the
    column-major Y^T[N, M] = B^T A^T, each operand read in place, all batch dims as one strided batch; None
    where that does not fit."""
    m, n, k = p["M"], p["N"], p["K"]
    strides = [_linear_batch(p["batch_dims"], p[key]) for key in ("a_batch", "b_batch", "y_batch")]
    a, b = _column_major(m, k, p["a_rs"], p["a_cs"]), _column_major(k, n, p["b_rs"], p["b_cs"])
    if None in strides or a is None or b is None:
        return None
    batch = math.prod(p["batch_dims"])
    if batch > 1 and strides[2] != m * n:  # the store kernel and cuBLAS write Y as one contiguous block
        return None
    if max(m, n, k, a[1], b[1], batch) > INT_MAX:
        return None
    return {
        "op_a": a[0],
        "op_b": b[0],
        "lda": a[1],
        "ldb": b[1],
        "stride_a": strides[0],
        "stride_b": strides[1],
        "batch": batch,
    }


def _cublas_conv(p: dict) -> dict | None:
    """A convolution as cuBLAS GEMMs per image and group, Y[oc, p] = W[oc, k] col[k, p]: col is X itself for
    a pointwise one (1x1, stride 1, no padding), else an im2col copy into a workspace, image by image."""
    cg, mg = p["C"] // p["group"], p["M"] // p["group"]
    depth, pixels = cg * math.prod(p["kernel"]), math.prod(p["out"])
    pointwise = (
        list(p["kernel"]) == [1, 1, 1]
        and list(p["strides"]) == [1, 1, 1]
        and list(p["pads"]) == [0, 0, 0]
        and list(p["out"]) == list(p["in"])
    )
    if max(depth, pixels, mg, p["N"] * p["group"]) > INT_MAX:
        return None
    return {"pointwise": pointwise, "col_floats": 0 if pointwise else p["group"] * depth * pixels}


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

    def __init__(self, cuda_graph: bool = True, precision: str = "fp32", gemm: str = "own") -> None:
        super().__init__()
        self.cuda_graph = cuda_graph
        self.precision = precision
        self.gemm = gemm  # "cublas": GEMM and convolution through cuBLAS (the baseline of the own kernels)
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
        if self.gemm == "cublas" and p["ctype"] == "float":
            blas = _cublas_gemm(p) if k.family == "gemm" else _cublas_conv(p)
            if blas is not None:
                # the result goes straight to Y where nothing is added to it, else to a workspace T that a
                # store kernel reads into Y with the bias, alpha/beta, C and the fused epilogue
                direct = not ("epilogue" in p or p.get("alpha") or p.get("has_c") or p.get("has_bias"))
                return {"engine": "cublas", "precision": precision, "index": index, "direct": direct, **blas}
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

    def signature(self, fn: str, step: Step) -> str:
        text = super().signature(fn, step)
        if self.strategy(step).get("engine") == "cublas":  # a host function: cuBLAS calls and launches
            return text.replace(self.kernel_qualifier, "static void", 1)
        return text

    def extra_params(self, step: Step) -> list[tuple[str, str]]:
        strategy = self.strategy(step)
        if strategy.get("engine") == "cublas":
            return [
                ("cublasHandle_t blas", "m->blas"),
                ("float *T", "(float *)m->blas_out"),
                ("float *col", "(float *)m->blas_col"),
                ("int *blas_failed", "&m->blas_failed"),
                ("cudaStream_t stream", "stream"),
            ]
        if strategy.get("splits", 1) > 1:
            return [("float *SK", "(float *)m->splitk")]  # split-K counters and partials (tile_gemm.cuh.j2)
        return []

    def launch(self, step: Step) -> str:
        k, p = step.kernel, step.kernel.params
        strategy = self.strategy(step)
        if strategy.get("engine") == "cublas":
            return ""  # a host function
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

    def makefile_params(self, host: dict) -> dict:
        return {"cublas": host["uses_cublas"]}

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
        blas = [(s, self.strategy(s)) for s in program.steps]
        blas = [(s, st) for s, st in blas if st.get("engine") == "cublas"]
        return {
            "uses_cublas": bool(blas),
            "blas_out_bytes": max([s.kernel.outputs[0].nbytes for s, st in blas if not st["direct"]], default=0),
            "blas_col_bytes": max([st.get("col_floats", 0) * 4 for _, st in blas], default=0),
            "blas_workspace_bytes": CUBLAS_WORKSPACE if blas else 0,
            **host,
            "io_bytes": io_bytes,
            "splitk_bytes": splitk,
            "cuda_graph": self.cuda_graph,
            "precision": self.precision,
        }
