"""Runs the generated Makefile: the one place mlcc invokes a C compiler."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import BuildError, MlccError


def build(
    out_dir: Path,
    targets: Sequence[str] = ("all",),
    jobs: int = 2,
    cflags: str | None = None,
    compiler: str | None = None,
) -> float:
    """Build `targets` in `out_dir` with make; returns the seconds taken. BuildError shows the compiler output.

    `compiler` is "nvcc" for CUDA builds (NVCC overrides it, as in the generated Makefile).
    """
    make = shutil.which("make")
    if make is None:
        raise MlccError("`make` was not found on PATH; install make (and a C compiler), or use --no-build")
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        raise MlccError(f"C compiler {cc!r} was not found; install gcc or clang, or set CC")
    if compiler == "nvcc":
        nvcc = os.environ.get("NVCC", "nvcc")
        if shutil.which(nvcc.split()[0]) is None:
            raise MlccError(
                f"CUDA compiler {nvcc!r} was not found; install the CUDA toolkit, set NVCC, or use --no-build"
            )
    cmd = [make, "-s", "-C", str(out_dir), f"-j{max(jobs, 1)}", *targets]
    if cflags is not None:
        cmd.append(f"CFLAGS={cflags}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip()
        tail = "\n".join(log.splitlines()[-40:])
        raise BuildError(
            f"building the generated code in {str(out_dir)!r} failed (this is an mlcc bug; please report it):\n{tail}"
        )
    return time.perf_counter() - start
