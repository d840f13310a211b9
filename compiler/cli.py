"""The `mlcc` command: parse, call the compiler, print progress and a summary. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .context import CompileOptions
from .cpu import CPUS
from .driver import compile_model
from .errors import MlccError
from .version import __version__


def _parse_shape(spec: str):
    """NAME=D0,D1,... (a tensor), NAME=[[D0,...],[D0,...]] (a sequence: each element's shape; NAME=[] if
    empty) or NAME=none (an optional input that is absent)."""
    name, sep, dims = spec.rpartition("=")
    if not sep or not name:
        raise click.BadParameter(f"{spec!r}: expected NAME=D0,D1,... (e.g. input=1,3,224,224)")
    dims = dims.strip()
    if dims.lower() == "none":
        return name, None
    if dims.startswith("["):
        try:
            shapes = json.loads(dims)
        except ValueError:
            shapes = None
        if not isinstance(shapes, list) or not all(
            isinstance(s, list) and all(type(d) is int and d >= 0 for d in s) for s in shapes
        ):
            raise click.BadParameter(f"{spec!r}: a sequence is [[D0,D1,...],[D0,D1,...],...] (non-negative dims)")
        return name, shapes
    try:
        shape = [int(d) for d in dims.split(",")] if dims else []
    except ValueError:
        raise click.BadParameter(f"{spec!r}: dims must be integers separated by commas") from None
    if any(d < 0 for d in shape):
        raise click.BadParameter(f"{spec!r}: dims must be non-negative")
    return name, shape


def _parse_bound(spec: str) -> tuple[str, list[int]]:
    """NAME=D0,D1,...: an output's bound, every dim at least 1."""
    name, sep, dims = spec.rpartition("=")
    try:
        shape = [int(d) for d in dims.split(",")] if sep and name and dims.strip() else None
    except ValueError:
        shape = None
    if shape is None or any(d < 1 for d in shape):
        raise click.BadParameter(f"{spec!r}: expected NAME=D0,D1,... with positive dims (e.g. image=1080,1920,3)")
    return name, shape


class _Progress:
    """One status line on a terminal, rewritten in place; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.last = ""

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        text = f"mlcc: {step} {done}/{total}" if total > 1 else f"mlcc: {step}..."
        if text != self.last:
            click.echo("\r\033[K" + text, err=True, nl=False)
            self.last = text

    def clear(self) -> None:
        if self.enabled and self.last:
            click.echo("\r\033[K", err=True, nl=False)


def _summary(report: dict, out: Path, verbose: bool = False) -> str:
    def mib(n: int) -> str:
        return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"

    build = f"{report['build_seconds']:.1f} s" if report["build_seconds"] is not None else "skipped (--no-build)"
    lines = [
        f"mlcc: compiled {report['nodes_in']} nodes -> {report['kernels']} kernels ({report['nodes_out']} nodes after passes)",
        f"  weights {mib(report['weight_bytes'])} (+ {mib(report['fill_bytes'])} filled at create), "
        f"arena {mib(report['arena_bytes'])} (naive {mib(report['naive_bytes'])}, "
        f"lower bound {mib(report['lower_bound_bytes'])})",
        f"  compile {report['compile_seconds']:.2f} s, build {build}",
    ]
    if verbose:
        lines.append(f"  import {report['import_seconds'] * 1000:.1f} ms")
        lines += [f"  pass {p['pass']:<24} {p['seconds'] * 1000:8.1f} ms  {p['nodes']} nodes" for p in report["passes"]]
        lines.append(f"  codegen {report['codegen_seconds'] * 1000:.1f} ms")
    lines.append(
        f"  output: {out}"
        + (f" (lib{report['prefix']}.so, lib{report['prefix']}.a, model.h)" if report["library"] else "")
    )
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--compare",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="MODEL.onnx",
    help="Also time onnxruntime on this model, alternating with mlcc in blocks of 5 runs, same inputs.",
)
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True, help="Threads for both engines.")
@click.option(
    "--runs", type=click.IntRange(0), default=0, help="Timed runs (default: as many as fit in 3 s, at least 10)."
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results here."
)
def bench_command(out_dir, compare, threads, runs, json_path):
    """Time the model compiled (target c) in OUT, optionally side by side with onnxruntime."""
    from .bench import bench, describe

    try:
        result = bench(out_dir, compare, threads, runs)
    except MlccError as err:
        click.echo(f"mlcc: error: {err}", err=True)
        sys.exit(err.exit_code)
    click.echo(describe(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


class _Mlcc(click.Command):
    """`mlcc MODEL.onnx ...` compiles; `mlcc bench OUT ...` times a compiled model (bench_command)."""

    def main(self, args=None, prog_name=None, **extra):
        args = list(sys.argv[1:] if args is None else args)
        if args[:1] == ["bench"]:
            return bench_command.main(args[1:], prog_name=f"{prog_name or 'mlcc'} bench", **extra)
        return super().main(args, prog_name, **extra)

    def format_epilog(self, ctx, formatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(
            "mlcc bench OUT [--compare MODEL.onnx] [--threads N] [--runs N] [--json FILE]: time a build."
        )


@click.command(cls=_Mlcc, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["c", "cuda"]), default="c", show_default=True, help="Code to generate.")
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output directory.",
)
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME=D0,D1,...",
    help="Bind the shape of input NAME (repeatable); needed where the model's dims are symbolic. A sequence "
    "input takes each element's shape, NAME=[[D0,D1],[D0,D1]]; an absent optional input, NAME=none.",
)
@click.option(
    "--output-bound",
    "output_bounds",
    multiple=True,
    metavar="NAME=D0,D1,...",
    help="Store output NAME, whose shape depends on the data (NonZero, Unique, NonMaxSuppression, ImageDecoder, "
    "...), with this upper bound instead of the inferred one (repeatable); a run that would exceed it fails.",
)
@click.option(
    "--name", default="model", show_default=True, help="Symbol prefix of the C API and library name (libNAME)."
)
@click.option("--no-build", is_flag=True, help="Write the sources and Makefile only; do not run the C compiler.")
@click.option(
    "--weights",
    type=click.Choice(["embed", "external"]),
    default="embed",
    show_default=True,
    help="embed: link the weights into the library; external: write weights.bin, read at create time.",
)
@click.option(
    "-O", "opt_level", type=click.IntRange(0, 3), default=2, show_default=True, help="Optimisation level 0-3."
)
@click.option("--verify", is_flag=True, help="Check IR invariants after every pass.")
@click.option(
    "--force", is_flag=True, help="Write into OUTPUT even if it is a non-empty directory mlcc did not create."
)
@click.option(
    "--cpu",
    type=click.Choice(CPUS),
    default="generic",
    show_default=True,
    help="c: instruction set: generic (portable), x86-64-v3 (AVX2), x86-64-v4 (AVX-512), native (this machine).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "tf32", "fp16", "bf16"]),
    default="fp32",
    show_default=True,
    help="cuda: GEMM/convolution arithmetic; below fp32 runs on tensor cores (see README for tolerances).",
)
@click.option(
    "--gemm",
    type=click.Choice(["own", "cublas"]),
    default="own",
    show_default=True,
    help="cuda: GEMM and convolution on mlcc's own kernels, or through cuBLAS (the baseline; links -lcublas).",
)
@click.option(
    "--cuda-graph/--no-cuda-graph",
    default=True,
    show_default=True,
    help="cuda: replay each run as one CUDA graph captured at create time.",
)
@click.option(
    "--dump-ir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Write the IR text after import (00-import.txt) and after every pass (NN-PASS.txt) into DIR.",
)
@click.option(
    "--viz",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Draw the final graph (fused kernels grouped, arena offsets) as FILE: .dot, .svg or .html.",
)
@click.option(
    "--disable-pass",
    "disabled_passes",
    multiple=True,
    metavar="PASS",
    help="Skip optional pass PASS of the pipeline (repeatable); -v lists the passes that ran.",
)
@click.option("-v", "--verbose", is_flag=True, help="Add per-pass times and node counts to the summary.")
@click.version_option(__version__, prog_name="mlcc")
def main(
    model,
    target,
    out_dir,
    input_shapes,
    output_bounds,
    name,
    no_build,
    weights,
    opt_level,
    verify,
    force,
    cpu,
    precision,
    gemm,
    cuda_graph,
    dump_ir,
    viz,
    disabled_passes,
    verbose,
):
    """Compile the ONNX model MODEL into a C library (libNAME.so, libNAME.a, model.h) in OUTPUT."""
    progress = _Progress()
    try:
        shapes = dict(_parse_shape(s) for s in input_shapes)
        bounds = dict(_parse_bound(s) for s in output_bounds)
        opts = CompileOptions(
            out_dir=out_dir,
            target=target,
            name=name,
            input_shapes=shapes,
            output_bounds=bounds,
            opt_level=opt_level,
            weights=weights,
            build=not no_build,
            verify=verify,
            force=force,
            cuda_graph=cuda_graph,
            precision=precision,
            gemm=gemm,
            cpu=cpu,
            progress=progress,
            dump_ir=dump_ir,
            viz=viz,
            disabled_passes=tuple(disabled_passes),
        )
        report = compile_model(model, opts)
    except MlccError as err:
        progress.clear()
        click.echo(f"mlcc: error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.BadParameter:
        progress.clear()
        raise
    except KeyboardInterrupt:
        progress.clear()
        click.echo("mlcc: interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # a compiler bug: say so plainly, with a way to get the traceback
        progress.clear()
        if os.environ.get("MLCC_TRACEBACK"):
            raise
        click.echo(f"mlcc: internal error: {type(err).__name__}: {err}", err=True)
        click.echo("mlcc: this is a bug in mlcc; rerun with MLCC_TRACEBACK=1 and report the output", err=True)
        sys.exit(1)
    progress.clear()
    report["prefix"] = name
    click.echo(_summary(report, out_dir, verbose))
    if dump_ir is not None:
        click.echo(f"  ir dumps: {dump_ir}")
    if viz is not None:
        click.echo(f"  graph drawing: {viz}")


if __name__ == "__main__":
    main()
