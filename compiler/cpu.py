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
