"""`make bench`: mlcc's generated C against onnxruntime on the CPU benchmark set, at 1 and 2 threads, side by
side in one process (`mlcc bench OUT --compare MODEL`), written to bench/results/cpu.md.

Models: light_resnet50, light_squeezenet and light_densenet121 (shipped with onnx), and from bench/zoo.py
(seeded weights) a MobileNetV2 at 224, a 6-layer BERT-style encoder (hidden 384, sequence 128) and a
YOLO-style detector at 320x320. Each compiles with -O2 and --cpu native. Benchmarks are not tests: nothing
here asserts a timing; the outputs of both engines are compared and the largest difference is reported.
Each (model, threads) is measured --rounds times, the rounds one after another over the whole set (so that a
slow spell of the machine falls on different rows); a row gives the medians over the rounds and the range of
its ratio (on a shared 2-vCPU VM one 3-second round's ratio moved by up to 6%).

    python bench/cpu.py [--out bench/results] [--threads 1,2] [--models resnet50,bert] [--seconds 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import onnx

import mlcc
from mlcc.cpu import cpu_target

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo import bert_encoder, mobilenet_v2, yolo_detector  # noqa: E402

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = {
    "resnet50": lambda: onnx.load(LIGHT / "light_resnet50.onnx"),
    "squeezenet": lambda: onnx.load(LIGHT / "light_squeezenet.onnx"),
    "densenet121": lambda: onnx.load(LIGHT / "light_densenet121.onnx"),
    "mobilenet_v2": lambda: mobilenet_v2(size=224),
    "bert_6x384_seq128": lambda: bert_encoder(layers=6, hidden=384, heads=6, seq=128, batch=1),
    "yolo_320": lambda: yolo_detector(size=320),
}


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores visible, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--build", type=Path, default=Path("bench/build"))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    builds = {}
    for name in args.models.split(","):
        model = MODELS[name]()
        path = args.build / f"{name}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, path)
        out = args.build / name
        builds[name] = (path, out, mlcc.compile(path, out_dir=out, cpu="native", force=True))
    runs = {}
    for round_ in range(args.rounds):
        for name, (path, out, _) in builds.items():
            for t in threads:
                # each measurement in a fresh process: the thread count is read at create time, and one
                # engine's memory must not be counted against the other's
                code = (
                    "import json, sys; from pathlib import Path; from mlcc.bench import bench; "
                    f"print(json.dumps(bench(Path({str(out)!r}), Path({str(path)!r}), {t}, 0, {args.seconds})))"
                )
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                runs.setdefault((name, t), []).append(result)
                print(
                    f"round {round_ + 1}/{args.rounds} {name:<18} {t} thread(s): mlcc "
                    f"{result['mlcc']['median_ms']:8.2f} ms, onnxruntime {result['onnxruntime']['median_ms']:8.2f} ms, "
                    f"ratio {result['ratio']:.3f}",
                    flush=True,
                )
    rows = []
    for (name, _), results in runs.items():
        report = builds[name][2]
        ratios = [r["ratio"] for r in results]
        row = dict(results[0], model=name, build_seconds=report["build_seconds"], kernels=report["kernels"])
        row.update(
            ratio=statistics.median(ratios),
            ratio_min=min(ratios),
            ratio_max=max(ratios),
            rounds=[{k: r[k] for k in ("mlcc", "onnxruntime", "ratio", "runs")} for r in results],
        )
        for engine in ("mlcc", "onnxruntime"):
            row[engine] = dict(results[0][engine], median_ms=statistics.median(r[engine]["median_ms"] for r in results))
        rows.append(row)
    write(args.out / "cpu.md", rows, threads, args)
    (args.out / "cpu.json").write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")


def write(path: Path, rows: list[dict], threads: list[int], args) -> None:
    import onnxruntime

    cpu = cpu_target("native")
    lines = [
        "# CPU benchmark: mlcc generated C vs onnxruntime",
        "",
        f"- machine: {machine()}",
        f"- date: {datetime.date.today().isoformat()}; mlcc {mlcc.__version__}; onnxruntime {onnxruntime.__version__}",
        f"- mlcc: -O2 --cpu native ({cpu.vector_bits}-bit vectors, {cpu.mr}x{cpu.nr} register tile, KC {cpu.kc}, "
        f"L2 {cpu.l2_bytes // 1024} KiB)",
        "- onnxruntime: CPUExecutionProvider, intra_op_num_threads = threads, sequential, default graph optimisations",
        f"- command: `make bench` (python bench/cpu.py --threads {args.threads} --seconds {args.seconds} --rounds "
        f"{args.rounds}); each measurement is `mlcc bench OUT --compare MODEL --threads N --seconds {args.seconds}` "
        "in a fresh process, the two engines alternating in blocks of at least 5 runs and 0.3 s, 0.25 s apart (so "
        "that neither runs while the other's idle workers still spin); the rounds go over the whole set in turn",
        "- ms: median over the rounds of each round's median; ratio = mlcc / onnxruntime per round, the median "
        "of the rounds (range: lowest and highest round); below 1: mlcc is faster; max diff = largest "
        "|mlcc - ort| output",
        "",
        "| model | threads | mlcc ms | onnxruntime ms | ratio (range) | max diff | mlcc +RSS MiB | ort +RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, o = r["mlcc"], r["onnxruntime"]
        lines.append(
            f"| {r['model']} | {r['threads']} | {m['median_ms']:.2f} | {o['median_ms']:.2f} | {r['ratio']:.3f} "
            f"({r['ratio_min']:.3f}-{r['ratio_max']:.3f}) | {r['max_abs_diff']:.2g} | "
            f"{m['rss_added_bytes'] / 2**20:.1f} | {o['rss_added_bytes'] / 2**20:.1f} |"
        )
    lines.append("")
    for t in threads:
        ratios = [r["ratio"] for r in rows if r["threads"] == t]
        if ratios:
            geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            lines.append(f"- geometric-mean ratio at {t} thread(s): **{geo:.3f}** over {len(ratios)} models")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
