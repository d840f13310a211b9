"""CUDA codegen without a GPU: the generated CUDA compiles with nvcc for sm_90 with warnings as errors, and
the GEMM kernels neither spill nor exceed their register budget (two blocks per SM) (ptxas -v)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest

import mlcc
from helpers import half_model, op_mix

ROOT = Path(__file__).resolve().parents[2]
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
NVCC_STRICT = "-O3 -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror -Xptxas -v"
pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) not installed")


MODELS = {
    "op_mix": (op_mix(), {}),
    "float16": (half_model(onnx.TensorProto.FLOAT16), {}),
    "bfloat16": (half_model(onnx.TensorProto.BFLOAT16), {}),
    "demo": (ROOT / "examples" / "demo.onnx", {"image": [2, 3, 32, 32]}),
    "squeezenet": (LIGHT / "light_squeezenet.onnx", {}),
    "inception_v1": (LIGHT / "light_inception_v1.onnx", {}),
}


def ptxas_report(log: str) -> dict[str, tuple[int, int]]:
    """kernel name -> (registers, spill store bytes) from `ptxas -v` output."""
    report, current = {}, None
    for line in log.splitlines():
        if m := re.search(r"Function properties for (\S+)", line):
            current = m.group(1)
        elif current and (m := re.search(r"(\d+) bytes spill stores", line)):
            report[current] = (0, int(m.group(1)))
        elif current and (m := re.search(r"Used (\d+) registers", line)):
            report[current] = (int(m.group(1)), report.get(current, (0, 0))[1])
    return report


@pytest.mark.parametrize("name", sorted(MODELS))
def test_generated_cuda_compiles_cleanly_for_sm90(name, tmp_path):
    path, shapes = MODELS[name]
    mlcc.compile(path, target="cuda", out_dir=tmp_path, input_shapes=shapes, build=False)
    source = (tmp_path / "model.cu").read_text()
    assert "cudaGraphLaunch" in source and "static __global__ void" in source
    proc = subprocess.run(
        ["make", "-s", "-C", str(tmp_path), "model.o", f"NVCCFLAGS={NVCC_STRICT}", "CUDA_ARCH=-arch=sm_90"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kernels = ptxas_report(proc.stdout + proc.stderr)
    gemms = {k: v for k, v in kernels.items() if "gemm" in k}
    assert kernels and (gemms or name != "demo")
    for kernel, (registers, spills) in gemms.items():
        assert spills == 0, f"{kernel} spills {spills} bytes"
        # Budget: two 256-thread blocks of the tile engine fit in one SM's 65536 registers.
        assert registers <= 128, f"{kernel} uses {registers} registers"


def test_cuda_build_links_both_libraries(tmp_path):
    mlcc.compile(
        ROOT / "examples" / "demo.onnx",
        target="cuda",
        out_dir=tmp_path,
        input_shapes={"image": [1, 3, 32, 32]},
        name="demo",
    )
    assert (tmp_path / "libdemo.so").is_file() and (tmp_path / "libdemo.a").is_file()
    header = (tmp_path / "model.h").read_text()
    assert "int demo_run_async(demo_model *model" in header
