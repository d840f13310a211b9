"""Kernels per -O level and arena vs naive vs lower bound on the nine light_* models (compile only, no build).

.venv/bin/python bench/passes_report.py > bench/results/passes_light.md
"""

from __future__ import annotations

import os
import tempfile

import onnx

import mlcc

MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
          "vgg19", "zfnet512"]  # fmt: skip
MIB = 1 << 20


def main() -> None:
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    print("| model | nodes in | kernels -O0 | kernels -O1 (no fusion) | kernels -O2 | arena MiB | naive MiB | lower bound MiB | arena/bound |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in MODELS:
        path = os.path.join(light, f"light_{name}.onnx")
        r = [mlcc.compile(path, out_dir=tempfile.mkdtemp(), build=False, opt_level=o) for o in (0, 1, 2)]
        a, n, b = r[2]["arena_bytes"], r[2]["naive_bytes"], r[2]["lower_bound_bytes"]
        print(
            f"| {name} | {r[2]['nodes_in']} | {r[0]['kernels']} | {r[1]['kernels']} | {r[2]['kernels']} "
            f"| {a / MIB:.2f} | {n / MIB:.2f} | {b / MIB:.2f} | {a / b:.3f} |"
        )


if __name__ == "__main__":
    main()
