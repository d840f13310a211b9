"""`make bench-gpu`: mlcc's CUDA target against PyTorch eager and torch.compile, and the own GEMM engine
against cuBLAS (torch.matmul), on one GPU. Prints markdown tables; with --out, writes gpu.md and gpu.json there.

Models, each at batch 1 and 32: ResNet-50 (torchvision's architecture, seeded random weights, exported to ONNX),
and from bench/zoo.py the 6-layer BERT-style encoder (hidden 384, sequence 128) and the YOLO-style detector at
320x320 of `make bench`, which PyTorch runs through bench/onnx_torch.py: the same graph and weights as mlcc.
Baselines: PyTorch eager, torch.compile (default mode) and the torch.compile module captured into a CUDA graph
(what mode="reduce-overhead" does, without a second compile). mlcc's fp32 rows are measured against PyTorch
in exact fp32 (TF32 off for matmul and cuDNN), its tf32 and fp16 rows against PyTorch with TF32 allowed.
All mlcc builds (CUDA_ARCH as in the environment) run in parallel first, while torch.compile compiles.
A precision written PRECISION+cublas (default: fp32+cublas too) builds with `--gemm cublas`: GEMM and
convolution through cuBLAS, the rest mlcc's, which shows what the own GEMM kernels cost in the models.

Timing: CUDA events around N back-to-back runs after warm-up, median of 5 repeats, all on one stream.
--no-compile [MODELS] leaves torch.compile out, for all models or those named: its compiles take most of the run. Benchmarks are not tests: nothing here
asserts a timing.

    python bench/gpu.py [--out bench/results] [--models resnet50,bert,yolo] [--batches 1,32]
                        [--precisions fp32,tf32,fp16,fp32+cublas] [--no-gemm] [--no-models] [--no-compile [MODELS]] [--jobs 12]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

import mlcc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_torch import OnnxModule  # noqa: E402
from zoo import bert_encoder, yolo_detector  # noqa: E402

REPEATS, WARMUP = 5, 10
GEMM_SHAPES = [  # ResNet-50's convolutions as implicit GEMMs (M = channels out, N = pixels, K), its FC, BERT FFNs
    (64, 3136, 576),
    (256, 3136, 64),
    (128, 784, 1152),
    (512, 784, 128),
    (256, 196, 2304),
    (1024, 196, 256),
    (512, 49, 4608),
    (2048, 49, 512),
    (1000, 1, 2048),
    (3072, 128, 768),
    (768, 128, 3072),
    (4096, 4096, 4096),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timed(fn, iters: int) -> float:
    """Median milliseconds per call of fn() over REPEATS batches of `iters` calls."""
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / iters)
    return statistics.median(samples)


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def arithmetic(precision: str) -> str:
    """The --precision of a precision column: fp32+cublas -> fp32."""
    return precision.partition("+")[0]


def build(onnx_path: str, out: str, precision: str) -> tuple[str, float, str | None]:
    """One mlcc build (in a worker process): (out, seconds, error or None)."""
    t = time.time()
    gemm = precision.partition("+")[2] or "own"
    try:
        mlcc.compile(onnx_path, target="cuda", out_dir=out, precision=arithmetic(precision), gemm=gemm, force=True)
        return out, time.time() - t, None
    except Exception as exc:  # reported in the table, the other rows still run
        return out, time.time() - t, f"{type(exc).__name__}: {exc}"


def graphed(fn):
    """fn (which launches work on the current stream) captured once into a CUDA graph; returns its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


class Case:
    """One model at one batch: its ONNX file, its torch module and inputs."""

    def __init__(self, name: str, batch: int, work: Path) -> None:
        self.name, self.batch = name, batch
        self.path = work / f"{name}_b{batch}.onnx"
        gen = torch.Generator().manual_seed(batch)
        if name == "resnet50":
            import torchvision

            torch.manual_seed(0)
            self.module = torchvision.models.resnet50().eval()
            self.inputs = [torch.randn(batch, 3, 224, 224, generator=gen)]
            torch.onnx.export(
                self.module, tuple(self.inputs), str(self.path), opset_version=17, dynamo=False,
                input_names=["x"], output_names=["y"],
            )  # fmt: skip
        else:
            if name == "bert":
                model = bert_encoder(layers=6, hidden=384, heads=6, seq=128, batch=batch)
                mask = torch.ones(batch, 128, dtype=torch.int64)
                mask[:, 96:] = 0  # a padded tail, as real batches have
                self.inputs = [torch.randint(0, 1000, (batch, 128), generator=gen), mask]
            else:
                model = yolo_detector(size=320, batch=batch)
                self.inputs = [torch.randn(batch, 3, 320, 320, generator=gen)]
            onnx.save(model, self.path)
            self.module = OnnxModule(model).eval()
        self.iters = 20 if batch == 1 else 5
        self.compiled = True  # whether torch.compile is timed

    def to_gpu(self) -> None:
        self.module = self.module.cuda()
        self.inputs = [x.cuda() for x in self.inputs]

    def baseline(self, tf32: bool, with_compile: bool) -> dict:
        """PyTorch's times with TF32 on or off: eager, torch.compile, and torch.compile replayed from a CUDA
        graph captured under the same setting (cuDNN picks its algorithms at capture)."""
        set_tf32(tf32)
        eager = lambda: self.module(*self.inputs)  # noqa: E731
        times = {"eager_ms": timed(eager, self.iters), "torch_compile_ms": None, "torch_compile_graph_ms": None}
        if with_compile:
            compiled_module = torch.compile(self.module)
            compiled = lambda: compiled_module(*self.inputs)  # noqa: E731
            compiled()
            times["torch_compile_ms"] = timed(compiled, self.iters)
            try:
                times["torch_compile_graph_ms"] = timed(graphed(compiled), self.iters)
            except Exception as exc:  # a capture that fails is reported, not fatal
                log(f"{self.name} b{self.batch}: torch.compile output could not be captured: {exc}")
        set_tf32(False)
        return times


def first(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def bench_models(cases: list[Case], builds: dict, precisions: list[str]) -> list[dict]:
    rows = []
    for case in cases:
        log(f"{case.name} batch {case.batch}: timing")
        with torch.no_grad():
            baseline = {
                tf32: case.baseline(tf32, case.compiled) for tf32 in {arithmetic(p) != "fp32" for p in precisions}
            }
            ref = first(case.module(*case.inputs)).float()
        for precision in precisions:
            out, seconds, error = builds[(case.name, case.batch, precision)]
            row = {"model": case.name, "batch": case.batch, "mlcc_precision": precision, "build_s": seconds}
            tf32 = arithmetic(precision) != "fp32"
            row.update(baseline[tf32], torch_tf32=tf32)
            if error:
                row["error"] = error
                rows.append(row)
                log(f"  {precision}: build failed: {error}")
                continue
            with mlcc.load(out) as model:
                ys = {
                    t.name: torch.empty(t.shape, device="cuda", dtype=getattr(torch, str(t.dtype)))
                    for t in model.outputs
                }
                xs = {t.name: x for t, x in zip(model.inputs, case.inputs)}
                stream = torch.cuda.current_stream().cuda_stream
                run = lambda: model.run_device(xs, ys, stream=stream)  # noqa: B023, E731 (used in this iteration)
                run()
                torch.cuda.synchronize()
                y = ys[model.outputs[0].name].float()
                row["rel_err_vs_torch"] = float((y - ref).abs().max() / ref.abs().max())
                row["mlcc_ms"] = timed(run, case.iters)
                row["cuda_graph"] = model.uses_cuda_graph
            rows.append(row)
            log(
                f"  {precision}: mlcc {row['mlcc_ms']:.3f} ms, torch.compile {fmt(row['torch_compile_ms'])} ms, "
                f"eager {row['eager_ms']:.3f} ms, rel err {row['rel_err_vs_torch']:.1e}"
            )
    return rows


def bench_gemm(builds: dict, precisions: list[str]) -> list[dict]:
    rows = []
    for m, n, k in GEMM_SHAPES:
        a, b = torch.randn(m, k, device="cuda"), torch.randn(k, n, device="cuda")
        flops = 2 * m * n * k
        for precision in precisions:
            out, _, error = builds[("gemm", (m, n, k), precision)]
            row = {"gemm": f"{m}x{n}x{k}", "precision": precision}
            set_tf32(arithmetic(precision) == "tf32")
            ah, bh = (a.half(), b.half()) if arithmetic(precision) == "fp16" else (a, b)
            row["cublas_tflops"] = flops / timed(lambda: torch.matmul(ah, bh), 20) / 1e9  # noqa: B023 (called at once)
            set_tf32(False)
            if error:
                row["error"] = error
            else:
                with mlcc.load(out) as model:
                    y = torch.empty(m, n, device="cuda")
                    stream = torch.cuda.current_stream().cuda_stream
                    run = lambda: model.run_device({"a": a, "b": b}, {"y": y}, stream=stream)  # noqa: B023, E731
                    row["mlcc_tflops"] = flops / timed(run, 20) / 1e9
                    row["ratio"] = row["mlcc_tflops"] / row["cublas_tflops"]
            rows.append(row)
    return rows


def gemm_model(m: int, n: int, k: int, path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "mm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def report(models: list, gemms: list) -> str:
    gpu = torch.cuda.get_device_name()
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        driver = subprocess.run(query, capture_output=True, text=True).stdout.strip()
    except OSError:
        driver = "unknown"
    lines = [
        f"# mlcc CUDA benchmark: {gpu}, driver {driver}, {datetime.date.today()}",
        "",
        f"torch {torch.__version__}, mlcc {mlcc.__version__}; command: `{' '.join(sys.argv)}`; CUDA_ARCH="
        f"`{os.environ.get('CUDA_ARCH', 'default')}`. Median of {REPEATS} repeats of back-to-back runs.",
        "",
    ]
    if models:
        lines += [
            "torch columns: exact fp32 on the fp32 rows, TF32 allowed on the others. `compile+graph`: the",
            "torch.compile module replayed from a CUDA graph. Ratio: mlcc / the fastest torch column.",
            "",
            "| model | batch | mlcc precision | mlcc ms | eager ms | torch.compile ms | compile+graph ms "
            "| mlcc / best torch | max rel err vs torch fp32 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in models:
            best = min(v for v in (r["eager_ms"], r["torch_compile_ms"], r["torch_compile_graph_ms"]) if v)
            ours = r.get("mlcc_ms")
            lines.append(
                f"| {r['model']} | {r['batch']} | {r['mlcc_precision']} | {fmt(ours) if ours else 'build failed'} "
                f"| {fmt(r['eager_ms'])} | {fmt(r['torch_compile_ms'])} | {fmt(r['torch_compile_graph_ms'])} "
                f"| {fmt(ours / best if ours else None, '.2f')} | {fmt(r.get('rel_err_vs_torch'), '.1e')} |"
            )
        lines.append("")
    if gemms:
        lines += ["| GEMM MxNxK | precision | mlcc TFLOP/s | cuBLAS TFLOP/s | mlcc / cuBLAS |", "|---|---|---|---|---|"]
        for r in gemms:
            lines.append(
                f"| {r['gemm']} | {r['precision']} | {fmt(r.get('mlcc_tflops'), '.1f')} | {r['cublas_tflops']:.1f} "
                f"| {fmt(r.get('ratio'), '.2f')} |"
            )
        lines.append("")
    errors = [r for r in models + gemms if "error" in r]
    for r in errors:
        lines.append(
            f"- build failed: {r.get('model', r.get('gemm'))} {r.get('batch', '')} {r['precision'] if 'precision' in r else r['mlcc_precision']}: {r['error'][:300]}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--models", default="resnet50,bert,yolo")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--precisions", default="fp32,tf32,fp16,fp32+cublas")
    parser.add_argument("--no-models", action="store_true")
    parser.add_argument("--no-gemm", action="store_true")
    parser.add_argument("--jobs", type=int, default=min(12, os.cpu_count() or 1))
    parser.add_argument("--no-compile", nargs="?", const="all", default="", metavar="MODELS")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    work = Path(tempfile.mkdtemp(prefix="mlcc-bench-"))
    set_tf32(False)
    cases = []
    if not args.no_models:
        for name in args.models.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                cases.append(Case(name, batch, work))
                cases[-1].compiled = args.no_compile != "all" and name not in args.no_compile.split(",")
    jobs = {}
    for case in cases:
        for p in precisions:
            jobs[(case.name, case.batch, p)] = (str(case.path), str(work / f"{case.name}{case.batch}{p}"), p)
    if not args.no_gemm:
        for m, n, k in GEMM_SHAPES:
            gemm_model(m, n, k, work / f"mm_{m}_{n}_{k}.onnx")
            for p in precisions:
                jobs[("gemm", (m, n, k), p)] = (str(work / f"mm_{m}_{n}_{k}.onnx"), str(work / f"mm{m}_{n}_{k}{p}"), p)
    log(f"{len(jobs)} mlcc builds on {args.jobs} processes; torch.compile meanwhile")
    spawn = multiprocessing.get_context("spawn")  # workers that never inherit this process's CUDA state
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        futures = {key: pool.submit(build, *job) for key, job in jobs.items()}
        with torch.no_grad():
            for case in cases:  # compile (and cache) while the builds run; timed later
                case.to_gpu()
                if case.compiled:
                    t = time.time()
                    try:
                        torch.compile(case.module)(*case.inputs)
                        log(f"torch.compile {case.name} batch {case.batch}: {time.time() - t:.1f} s")
                    except Exception as exc:  # a baseline that fails is reported, not fatal
                        case.compiled = False
                        log(f"torch.compile {case.name} batch {case.batch} failed: {str(exc)[:300]}")
        builds = {key: f.result() for key, f in futures.items()}
    log("builds done: " + ", ".join(f"{k[0]} {k[1]} {k[2]} {v[1]:.0f}s" for k, v in builds.items() if k[0] != "gemm"))
    models = bench_models(cases, builds, precisions)
    gemms = [] if args.no_gemm else bench_gemm(builds, precisions)
    text = report(models, gemms)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu.md").write_text(text)
        payload = {"gpu": torch.cuda.get_device_name(), "models": models, "gemm": gemms}
        (args.out / "gpu.json").write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
