"""mlcc: an ahead-of-time compiler from ONNX to dependency-free C libraries.

Public API: compile() and load().
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx

from .context import CompileOptions
from .driver import compile_model
from .errors import MlccError
from .runtime.loader import CompiledModel
from .version import __version__

__all__ = ["CompiledModel", "MlccError", "__version__", "compile", "load"]


def compile(
    model: onnx.ModelProto | str | os.PathLike,
    target: str = "c",
    out_dir: str | os.PathLike = "out",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    name: str = "model",
    output_bounds: Mapping[str, Sequence[int]] | None = None,
    opt_level: int = 2,
    weights: str = "embed",
    build: bool = True,
    verify: bool = False,
    cuda_graph: bool = True,
    force: bool = False,
    precision: str = "fp32",
    gemm: str = "own",
    cpu: str = "generic",
    dump_ir: str | os.PathLike | None = None,
    viz: str | os.PathLike | None = None,
    disable_passes: Sequence[str] = (),
) -> dict:
    """Compile an ONNX model (path or ModelProto) into `out_dir`, build it, and return the compile report.

    `out_dir` must be new, empty, or an earlier mlcc output directory, unless `force` is set.
    `output_bounds`: {output name: shape}, the upper bound to store a data-dependent output with instead of
    the inferred one (a run that would exceed it fails with MLCC_ERR_OVER_BOUND).
    `gemm` (cuda target): "own" (mlcc's kernels) or "cublas" (GEMM and convolution through cuBLAS).
    `cpu` (c target): generic, x86-64-v3, x86-64-v4 or native (compiler/cpu.py).
    `dump_ir`: a directory for the IR text after import and after every pass; `viz`: a .dot, .svg or .html
    file for a drawing of the final graph with its memory plan. `disable_passes`: optional passes of the
    pipeline (compiler/pipeline.py) to skip.
    """
    opts = CompileOptions(
        out_dir=Path(out_dir),
        target=target,
        name=name,
        input_shapes=dict(input_shapes or {}),
        output_bounds=dict(output_bounds or {}),
        opt_level=opt_level,
        weights=weights,
        build=build,
        verify=verify,
        cpu=cpu,
        cuda_graph=cuda_graph,
        force=force,
        precision=precision,
        gemm=gemm,
        dump_ir=None if dump_ir is None else Path(dump_ir),
        viz=None if viz is None else Path(viz),
        disabled_passes=tuple(disable_passes),
    )
    return compile_model(model, opts)


def load(out_dir: str | os.PathLike) -> CompiledModel:
    """Load a model compiled into `out_dir`: `.inputs`, `.outputs`, `.run({name: array})`."""
    return CompiledModel(out_dir)
