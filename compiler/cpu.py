"""CPU targets of the c backend (`--cpu`): the instruction set, the GEMM register tile and cache-sized blocks.

The GEMM engine (templates/c/gemm_engine.j2) computes MR x NR tiles of the output in vector registers:
MR rows broadcast from A, NR = 2 vectors of B. MR is 6 where there are 16 vector registers (SSE2, NEON,
AVX2: 12 accumulators, 2 of B, 1 broadcast) and 8 with AVX-512's 32, which also fits the channel counts of
real models (multiples of 8: no partial panels); NR follows the vector width. Weights packed as the A
operand of a convolution have MR rows per panel, so packed weights belong to one target. Blocks are an analytical
choice from the cache sizes: a KC x NR strip of packed B stays in L1 while the MR x KC panels of A pass
over it; a KC x NC block of packed B is kept in half of L2.

  generic     128-bit vectors (SSE2 on x86-64, NEON on AArch64, plain C elsewhere); the portable default
  x86-64-v3   256-bit AVX2 + FMA (Haswell, Zen 1 and newer)
  x86-64-v4   512-bit AVX-512 (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4 and newer)
  native      whatever the build machine's compiler targets with -march=native (the library then runs
              only on machines like it)
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import MlccError

CPUS = ("generic", "x86-64-v3", "x86-64-v4", "native")
MR_16_REGISTERS = 6  # rows of the register tile: 2 * MR accumulators + 3 fit in 16 vector registers
MR_32_REGISTERS = 8  # AVX-512
L1_BYTES = 32 * 1024  # L1d of every current x86-64 and AArch64 core, or more


@dataclass(frozen=True)
class CpuTarget:
    name: str
    vector_bits: int
    march: str  # compiler flags for the instruction set ("" for the compiler's default)
    l2_bytes: int

    @property
    def vw(self) -> int:
        """float32 lanes per vector."""
        return self.vector_bits // 32

    @property
    def mr(self) -> int:
        return MR_32_REGISTERS if self.vector_bits >= 512 else MR_16_REGISTERS

    @property
    def nr(self) -> int:
        return 2 * self.vw

    @property
    def kc(self) -> int:
        """Depth of one micro-kernel call: its KC x NR strip of B fills half of L1 and stays there while
        the MR-row panels of A pass over it."""
        return max(64, min(384, L1_BYTES // 2 // (4 * self.nr)))

    def kc_for(self, k: int) -> int:
        """The depth of K blocks for a reduction of k: at most KC, the blocks equal (144 -> 72 + 72, not
        128 + 16), so that no block is a short one that costs a full pass over the output tile."""
        blocks = -(-k // self.kc)
        return -(-k // blocks)

    def pixel_rows(self, pixels: int) -> int:
        """The rows of a pixel-major tile that reads its input in place (conv_pmajor.c.j2), for a map of
        `pixels`: MR, or MR - 1 where that computes fewer rows in all, each tile's fixed cost (its transposed
        store) counted as half a row; 49 pixels are then 7 tiles of 7 rather than 7 of 8 with one pixel in
        the last. Fewer rows than MR store their runs masked (AVX-512), so only where MR has a transpose."""
        if transpose_plan(self.mr, self.vw) is None:
            return self.mr
        return min((self.mr, self.mr - 1), key=lambda rows: -(-pixels // rows) * (rows + 0.5))

    def pixel_tail(self, pixels: int, rows: int) -> int:
        """The rows of the micro-kernel for a map's last, partial tile of `rows`-pixel tiles (0: the tile's own
        one): its remainder where that is at most half a tile. A tile of R rows does 2R FMAs per step of depth in
        as many dependency chains, a quarter of a whole tile's time for R = 1 or 2 (the FMA latency) and half
        for R = MR / 2; computed as a whole tile, 13x13, 27x27 and 55x55 maps (P = 1 mod 8) spent 1/22, 1/92
        and 1/379 of their tiles on one pixel. Only where MR has a transpose (pixel_rows)."""
        tail = pixels % rows
        if transpose_plan(self.mr, self.vw) is None or not 0 < tail <= rows // 2:
            return 0
        return tail

    def nc(self, k: int) -> int:
        """Columns of a packed B block: KC x NC floats fill about half of L2."""
        cols = (self.l2_bytes // 2) // (4 * min(k, self.kc))
        return max(self.nr, cols // self.nr * self.nr)


def _native_vector_bits(cc: str = "cc") -> int:
    """The widest float vector the compiler targets with -march=native (128 when it cannot tell)."""
    try:
        macros = subprocess.run(
            [cc, "-march=native", "-dM", "-E", "-"], input="", capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 128
    if "__AVX512F__" in macros:
        return 512
    if "__AVX2__" in macros and "__FMA__" in macros:
        return 256
    return 128


def _l2_bytes() -> int:
    """The L2 size of cpu0 from sysfs (Linux), or 256 KiB, a size every current core has at least."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2":
                text = (index / "size").read_text().strip().upper()
                scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
                return int(text.rstrip("KM")) * scale
        except (OSError, ValueError):
            continue
    return 256 * 1024


@functools.cache
def cpu_target(name: str) -> CpuTarget:
    if name == "generic":
        return CpuTarget("generic", 128, "", 256 * 1024)
    if name == "x86-64-v3":
        return CpuTarget(name, 256, "-march=x86-64-v3", 1024 * 1024)
    if name == "x86-64-v4":
        return CpuTarget(name, 512, "-march=x86-64-v4", 1024 * 1024)
    if name == "native":
        return CpuTarget(name, _native_vector_bits(), "-march=native", _l2_bytes())
    raise MlccError(f"--cpu {name!r} is not known; use one of {', '.join(CPUS)}")


@dataclass(frozen=True)
class Shuffle:
    """dst = lanes `lanes` of the concatenation of vectors a and b (b's lanes numbered from the width on)."""

    dst: str
    a: str
    b: str
    lanes: tuple[int, ...]


def transpose_plan(mr: int, vw: int) -> tuple[list[Shuffle], list[tuple[str, int, int]]] | None:
    """How the engine turns MR row vectors of VW lanes (rows t0..t{MR-1}, lane c = column c) into runs of MR
    values per column, for a tile stored transposed (a pixel-major convolution writes each output channel's
    run of MR pixels): log2(MR) stages of two-vector shuffles, each interleaving blocks of 1, 2, 4, ...
    lanes of two vectors that hold the same columns, and then (vector, first lane, column) per run of MR.
    None where MR is not a power of two at most VW (the engine then stores the tile lane by lane)."""
    if mr < 2 or mr & (mr - 1) or mr > vw:
        return None
    vectors = {f"t{r}": [(r, c) for c in range(vw)] for r in range(mr)}
    steps: list[Shuffle] = []
    block, stage = 1, 0
    while block < mr:
        stage += 1
        groups: dict[frozenset, list[str]] = {}
        for name, lanes in vectors.items():
            groups.setdefault(frozenset(c for _, c in lanes), []).append(name)
        result = {}
        for names in groups.values():
            names.sort(key=lambda n: min(r for r, _ in vectors[n]))
            for a, b in zip(names[::2], names[1::2]):
                for half in (0, 1):
                    lanes = []
                    for i in range(half * vw // (2 * block), (half + 1) * vw // (2 * block)):
                        lanes += [i * block + k for k in range(block)] + [vw + i * block + k for k in range(block)]
                    dst = f"s{stage}_{len(steps)}"
                    steps.append(Shuffle(dst, a, b, tuple(lanes)))
                    both = vectors[a] + vectors[b]
                    result[dst] = [both[x] for x in lanes]
        vectors = result
        block *= 2
    runs = []
    for name, lanes in vectors.items():
        for first in range(0, vw, mr):
            run = lanes[first : first + mr]
            assert [r for r, _ in run] == list(range(mr)) and len({c for _, c in run}) == 1
            runs.append((name, first, run[0][1]))
    return steps, sorted(runs, key=lambda t: t[2])
