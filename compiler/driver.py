"""One compile, end to end: import -> passes -> program -> codegen -> files -> build."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from . import outdir
from .codegen import toolchain
from .codegen.backends.c import ABI_VERSION, CBackend, ModelMeta
from .codegen.backends.cuda import CudaBackend
from .codegen.program import build_program, model_hash, weights_file
from .context import PRECISIONS, TARGETS, WEIGHT_MODES, CompileOptions, PassContext
from .cpu import CPUS, cpu_target
from .errors import MlccError
from .importer.bounds import bound_outputs
from .importer.onnx import import_onnx, load_model
from .observe.dump_ir import IrDumper
from .observe.viz import check_format, write_viz
from .paths import runtime_c_dir
from .pipeline import check_disabled, run_pipeline
from .version import __version__

_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RUNTIME_FILES = {
    "c": (
        "mlcc_runtime.h",
        "mlcc_runtime.c",
        "mlcc_convert.h",
        "mlcc_math.h",
        "mlcc_pool.h",
        "mlcc_random.h",
        "mlcc_strings.h",
        "mlcc_image.h",
        "mlcc_jpeg.h",
        "mlcc_webp.h",
        "mlcc_vp8l.h",
        "mlcc_jpeg2k.h",
        "mlcc_gif.h",
    ),
    "cuda": ("mlcc_runtime.h", "mlcc_runtime.c", "mlcc_convert.h", "mlcc_math.h", "mlcc_cuda.h"),
}
SOURCE_NAMES = {"c": "model.c", "cuda": "model.cu"}


def _check_options(opts: CompileOptions) -> None:
    if opts.target not in TARGETS:
        raise MlccError(f"unknown target {opts.target!r}; use one of {', '.join(TARGETS)}")
    if not _PREFIX.match(opts.name):
        raise MlccError(f"--name {opts.name!r} must be a C identifier (letters, digits, _; not starting with a digit)")
    if opts.precision not in PRECISIONS:
        raise MlccError(f"--precision must be one of {', '.join(PRECISIONS)}")
    if opts.precision != "fp32" and opts.target != "cuda":
        raise MlccError(f"--precision {opts.precision} applies to --target cuda; the c target computes in fp32")
    if opts.gemm not in ("own", "cublas"):
        raise MlccError("--gemm must be own or cublas")
    if opts.gemm != "own" and opts.target != "cuda":
        raise MlccError(f"--gemm {opts.gemm} applies to --target cuda; the c target has its own GEMM engine only")
    if opts.cpu not in CPUS:
        raise MlccError(f"--cpu must be one of {', '.join(CPUS)}")
    if opts.weights not in WEIGHT_MODES:
        raise MlccError(f"--weights must be one of {', '.join(WEIGHT_MODES)}")
    if opts.viz is not None:
        check_format(Path(opts.viz))


def _inside(path: Path, directory: Path) -> bool:
    where, directory = path.resolve(), directory.resolve()
    return where == directory or directory in where.parents


def compile_model(source, opts: CompileOptions) -> dict:
    """Compile `source` (path or ModelProto) into opts.out_dir; returns the report (also written as report.json)."""
    _check_options(opts)
    progress = opts.progress or (lambda step, done, total: None)
    started = time.perf_counter()
    progress("import", 0, 1)
    t = time.perf_counter()
    model, base_dir, raw = load_model(source)
    digest = model_hash(raw, opts.flags())
    graph = import_onnx(model, opts.input_shapes, lambda done, total: progress("import", done, total), base_dir)
    bound_outputs(graph, opts.output_bounds)
    nodes_in = len(graph.nodes)
    import_s = time.perf_counter() - t

    out = Path(opts.out_dir)
    ctx = PassContext(
        opt_level=opts.opt_level,
        verify=opts.verify,
        cpu=cpu_target(opts.cpu),
        disabled=check_disabled(opts.target, opts.disabled_passes),
    )
    ctx.after.append(lambda name, index, g: progress("passes", index + 1, len(ctx.timings) + 1))
    if any(p is not None and _inside(Path(p), out) for p in (opts.dump_ir, opts.viz)):
        outdir.claim(out, opts.force)  # before our own dumps make OUTPUT look like someone else's directory
    if opts.dump_ir is not None:
        dumper = IrDumper(Path(opts.dump_ir))
        dumper.write("import", graph)
        ctx.after.append(lambda name, index, g: dumper.write(name, g))
    graph = run_pipeline(graph, opts.target, ctx)

    progress("codegen", 0, 1)
    t = time.perf_counter()
    program = build_program(graph, views=True)
    if opts.viz is not None:
        write_viz(Path(opts.viz), program)
    meta = ModelMeta(
        prefix=opts.name,
        model_hash=digest,
        version=__version__,
        flags=json.dumps(opts.flags(), sort_keys=True),
        weights=opts.weights,
        source_name=SOURCE_NAMES[opts.target],
    )
    if opts.target == "cuda":
        backend = CudaBackend(cuda_graph=opts.cuda_graph, precision=opts.precision, gemm=opts.gemm)
    else:
        backend = CBackend(cpu_target(opts.cpu))
    files = backend.generate(program, meta)
    outdir.claim(out, opts.force)
    for stale in (f"lib{opts.name}.so", f"lib{opts.name}.a", "model.json"):
        outdir.remove(out / stale)  # never leave a library that looks valid for other sources
    for name, text in files.items():
        outdir.write(out / name, text)
    for name in RUNTIME_FILES[opts.target]:
        outdir.write(out / name, (runtime_c_dir() / name).read_bytes())
    outdir.write(out / "weights.bin", weights_file(program.weights, digest))
    manifest = {
        "mlcc_version": __version__,
        "abi_version": ABI_VERSION,
        "target": opts.target,
        "prefix": opts.name,
        "model_hash": digest,
        "weights": opts.weights,
        "library": f"lib{opts.name}.so",
        "inputs": [{"name": v.name, "dtype": v.dtype.name, "shape": list(v.shape)} for v in graph.inputs],
        "outputs": [{"name": v.name, "dtype": v.dtype.name, "shape": list(v.shape)} for v in graph.outputs],
    }
    if graph.signature is not None:  # sequence or optional graph inputs or outputs: their tensors' grouping
        manifest["signature"] = graph.signature
    outdir.write(out / "model.json", json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
    codegen_s = time.perf_counter() - t
    progress("codegen", 1, 1)

    build_s = None
    if opts.build:
        progress("build", 0, 1)
        variables = toolchain.cublas_variables() if opts.gemm == "cublas" else None
        build_s = toolchain.build(
            out, jobs=opts.jobs, compiler="nvcc" if opts.target == "cuda" else None, variables=variables
        )
        progress("build", 1, 1)

    report = {
        "model_hash": digest,
        "target": opts.target,
        "opt_level": opts.opt_level,
        "nodes_in": nodes_in,
        "nodes_out": len(graph.nodes),
        "kernels": len(program.steps),
        "weight_bytes": len(program.weights),
        "fill_bytes": program.fill_bytes,
        "arena_bytes": program.memory.arena_bytes,
        "naive_bytes": program.memory.naive_bytes,
        "lower_bound_bytes": program.memory.lower_bound_bytes,
        "passes": ctx.timings,
        "import_seconds": import_s,
        "codegen_seconds": codegen_s,
        "build_seconds": build_s,
        "compile_seconds": time.perf_counter() - started - (build_s or 0.0),
        "library": str(out / f"lib{opts.name}.so") if opts.build else None,
    }
    outdir.write(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
