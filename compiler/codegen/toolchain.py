"""Runs the generated Makefile: the one place mlcc invokes a C compiler."""

from __future__ import annotations

import importlib.util
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
    variables: dict[str, str] | None = None,
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
    cmd += [f"{name}={value}" for name, value in (variables or {}).items()]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip()
        tail = "\n".join(log.splitlines()[-40:])
        raise BuildError(
            f"building the generated code in {str(out_dir)!r} failed (this is an mlcc bug; please report it):\n{tail}"
        )
    return time.perf_counter() - start


def _has_cublas_header(root: Path) -> bool:
    return any((root / d / "cublas_v2.h").is_file() for d in ("include", "targets/x86_64-linux/include"))


def cublas_variables() -> dict[str, str]:
    """Make variables that find cuBLAS for `--gemm cublas` builds: none where the environment sets them or
    the CUDA toolkit has cuBLAS; else those of pip's nvidia-cublas package (headers, libraries, and an rpath
    so the library finds them at run time). MlccError where there is no cuBLAS."""
    if "CUBLAS_INCLUDE" in os.environ or "CUBLAS_LIBS" in os.environ:
        return {}
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc").split()[0])
    if nvcc is not None and _has_cublas_header(Path(nvcc).resolve().parent.parent):
        return {}
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("cu13", "cublas"):  # nvidia-cublas (CUDA 13), nvidia-cublas-cu12
            include, lib = Path(base) / sub / "include", Path(base) / sub / "lib"
            blas, blas_lt = sorted(lib.glob("libcublas.so*")), sorted(lib.glob("libcublasLt.so*"))
            if (include / "cublas_v2.h").is_file() and blas and blas_lt:
                return {
                    "CUBLAS_INCLUDE": f"-I{include}",
                    "CUBLAS_LIBS": f"-L{lib} -l:{blas[0].name} -l:{blas_lt[0].name} -Xlinker -rpath={lib}",
                }
    raise MlccError(
        "--gemm cublas: cuBLAS was not found (no cublas_v2.h in the CUDA toolkit, no pip package nvidia-cublas); "
        "install one of them, set CUBLAS_INCLUDE and CUBLAS_LIBS (see the generated Makefile), or use --no-build"
    )
