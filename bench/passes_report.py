"""Kernels per -O level and arena vs naive vs lower bound on the nine light_* models, then the bench set's
BERT encoder and YOLO detector (attention, prologues) (compile only, no build).

.venv/bin/python bench/passes_report.py > bench/results/passes_light.md
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx
from cpu import MODELS as BENCH_MODELS

import mlcc

MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
          "vgg19", "zfnet512"]  # fmt: skip
EXTRA = ["bert_6x384_seq128", "yolo_320"]
MIB = 1 << 20


def row(name: str, model) -> str:
    r = []
    for level in (0, 1, 2):
        out = Path(tempfile.mkdtemp())
        r.append(mlcc.compile(model, out_dir=out, build=False, opt_level=level))
    pads = (out / "model.c").read_text().count("/* PadPlanes ")  # calls of -O2's pad kernels
    a, n, b = r[2]["arena_bytes"], r[2]["naive_bytes"], r[2]["lower_bound_bytes"]
    return (
        f"| {name} | {r[2]['nodes_in']} | {r[0]['kernels']} | {r[1]['kernels']} | {r[2]['kernels']} | {pads} "
        f"| {a / MIB:.2f} | {n / MIB:.2f} | {b / MIB:.2f} | {a / b:.3f} |"
    )


def main() -> None:
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    print("| model | nodes in | kernels -O0 | kernels -O1 (no fusion) | kernels -O2 | of which pads | arena MiB | naive MiB | lower bound MiB | arena/bound |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in MODELS:
        print(row(name, os.path.join(light, f"light_{name}.onnx")))
    for name in EXTRA:
        print(row(name, BENCH_MODELS[name]()))


if __name__ == "__main__":
    main()
