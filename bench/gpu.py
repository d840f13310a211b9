"""`make bench-gpu`: mlcc's CUDA target against PyTorch eager and torch.compile, and the own GEMM engine
against cuBLAS (torch.matmul), on one GPU. Prints a markdown table; with --out, writes it and a JSON file.

Models: ResNet-50 (torchvision architecture, seeded random weights) exported to ONNX, at batch 1 and 32.
Timing: CUDA events around N back-to-back runs after warm-up, median of 5 repeats, on the same stream.
Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

import mlcc

REPEATS, WARMUP = 5, 10


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


def mlcc_runner(onnx_path: Path, out: Path, precision: str, x: torch.Tensor):
    mlcc.compile(onnx_path, target="cuda", out_dir=out, precision=precision, force=True)
    model = mlcc.load(out)
    name_in, name_out = model.inputs[0].name, model.outputs[0].name
    y = torch.empty(model.outputs[0].shape, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    return model, (lambda: model.run_device({name_in: x}, {name_out: y}, stream=stream)), y


def bench_resnet(work: Path, batch: int, rows: list[dict]) -> None:
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet50().eval().cuda()
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    path = work / f"resnet50_b{batch}.onnx"
    torch.onnx.export(net, (x,), str(path), opset_version=17, dynamo=False, input_names=["x"], output_names=["y"])
    iters = 20 if batch == 1 else 5
    with torch.no_grad():
        ref = net(x)
        eager = timed(lambda: net(x), iters)
        compiled = torch.compile(net)
        compiled(x)
        inductor = timed(lambda: compiled(x), iters)
    for precision in ("fp32", "tf32", "fp16"):
        model, run, y = mlcc_runner(path, work / f"r{batch}{precision}", precision, x)
        run()
        torch.cuda.synchronize()
        err = float((y - ref).abs().max() / ref.abs().max())
        ms = timed(run, iters)
        rows.append(
            {
                "model": "resnet50",
                "batch": batch,
                "mlcc_precision": precision,
                "mlcc_ms": ms,
                "eager_ms": eager,
                "torch_compile_ms": inductor,
                "rel_err_vs_torch": err,
                "cuda_graph": model.uses_cuda_graph,
            }
        )
        model.close()


def bench_gemm(work: Path, rows: list[dict]) -> None:
    """The own engine on ResNet-50's GEMM shapes (as implicit GEMMs) and a BERT-base FFN, against cuBLAS."""
    from onnx import TensorProto, helper

    shapes = [
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
    for m, n, k in shapes:
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["y"])],
            "mm",
            [
                helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n]),
            ],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        )
        onnx_path = work / f"mm_{m}_{n}_{k}.onnx"
        import onnx

        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), onnx_path)
        a, b = torch.randn(m, k, device="cuda"), torch.randn(k, n, device="cuda")
        for precision in ("fp32", "tf32", "fp16"):
            out = work / f"mm{m}_{n}_{k}{precision}"
            mlcc.compile(onnx_path, target="cuda", out_dir=out, precision=precision, force=True)
            model = mlcc.load(out)
            y = torch.empty(m, n, device="cuda")
            stream = torch.cuda.current_stream().cuda_stream
            ours = timed(lambda: model.run_device({"a": a, "b": b}, {"y": y}, stream=stream), 20)  # noqa: B023 (called at once)
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
            ah, bh = (a.half(), b.half()) if precision == "fp16" else (a, b)
            cublas = timed(lambda: torch.matmul(ah, bh), 20)  # noqa: B023 (called at once)
            torch.backends.cuda.matmul.allow_tf32 = False
            flops = 2 * m * n * k
            rows.append(
                {
                    "gemm": f"{m}x{n}x{k}",
                    "precision": precision,
                    "mlcc_tflops": flops / ours / 1e9,
                    "cublas_tflops": flops / cublas / 1e9,
                    "ratio": cublas / ours,
                }
            )
            model.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-models", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlcc-bench-"))
    models, gemms = [], []
    if not args.skip_models:
        for batch in (1, 32):
            bench_resnet(work, batch, models)
    bench_gemm(work, gemms)
    gpu = torch.cuda.get_device_name()
    driver = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"# mlcc CUDA benchmark: {gpu}, driver {driver}, {datetime.date.today()}",
        "",
        f"torch {torch.__version__}, command: `make bench-gpu` (python bench/gpu.py). Median of {REPEATS} repeats.",
        "",
    ]
    if models:
        lines += [
            "| model | batch | mlcc precision | mlcc ms | torch eager ms | torch.compile ms | mlcc / torch.compile | max rel err vs torch |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in models:
            lines.append(
                f"| {r['model']} | {r['batch']} | {r['mlcc_precision']} | {r['mlcc_ms']:.3f} | {r['eager_ms']:.3f} | "
                f"{r['torch_compile_ms']:.3f} | {r['mlcc_ms'] / r['torch_compile_ms']:.2f} | {r['rel_err_vs_torch']:.1e} |"
            )
        lines.append("")
    lines += ["| GEMM MxNxK | precision | mlcc TFLOP/s | cuBLAS TFLOP/s | mlcc / cuBLAS |", "|---|---|---|---|---|"]
    for r in gemms:
        lines.append(
            f"| {r['gemm']} | {r['precision']} | {r['mlcc_tflops']:.1f} | {r['cublas_tflops']:.1f} | {r['ratio']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu.md").write_text(text)
        (args.out / "gpu.json").write_text(
            json.dumps({"gpu": gpu, "driver": driver, "models": models, "gemm": gemms}, indent=2)
        )


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
