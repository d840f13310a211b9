"""CUDA codegen without a GPU: the generated CUDA compiles with nvcc for sm_90 with warnings as errors, and
the GEMM and convolution kernels (the tiled engine, split K and fused epilogues included) neither spill nor
exceed their register budget (two blocks per SM) (ptxas -v)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

import mlcc
from helpers import NEEDS_NVCC, NVCC_STRICT, half_model, op_mix

ROOT = Path(__file__).resolve().parents[2]
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
pytestmark = NEEDS_NVCC


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
    gemms = {k: v for k, v in kernels.items() if any(f in k for f in ("gemm", "matmul", "conv"))}  # + epilogues
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


def test_split_k_choice():
    """K is split only where the output tiles leave most multiprocessors idle; every split gets K tiles."""
    from mlcc.codegen.backends.cuda import SPLIT_MAX, split_k

    assert split_k(1, 4100, 16) == (29, 9)  # 257 K tiles: 28 splits of 9, the last of 5
    assert split_k(384, 768, 16) == (1, 48)  # enough tiles already
    assert split_k(12, 96, 16) == (1, 6)  # too little K to share
    for tiles in (1, 2, 5, 12, 40, 63, 64, 200):
        for k in (1, 15, 16, 64, 130, 577, 4608, 100000):
            splits, per = split_k(tiles, k, 16)
            k_tiles = -(-k // 16)
            assert 1 <= splits <= SPLIT_MAX and (splits - 1) * per < k_tiles <= splits * per
            assert splits == 1 or tiles < 64


def test_split_k_kernels_compile_and_launch_their_splits(tmp_path):
    """A MatMul of one output tile over K = 4100: the launch has 29 column blocks (29 splits of 1 tile), the
    kernel takes the split-K buffer, the host allocates and zeroes it, and nvcc compiles it all cleanly."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [64, 4100])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 33])],
        [onnx.numpy_helper.from_array(np.ones((4100, 33), np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    mlcc.compile(model, target="cuda", out_dir=tmp_path, build=False)
    source = (tmp_path / "model.cu").read_text()
    assert "<<<dim3(29, 1, 1), 256, 0, stream>>>" in source and "(float *)m->splitk)" in source
    assert "mlcc_split_last(counter, 29)" in source and "const int t0 = split * 9" in source
    assert "cudaMemset(m->splitk, 0, 475392)" in source  # 64 counter slots + 29 partial 64x64 tiles, in bytes
    proc = subprocess.run(
        ["make", "-s", "-C", str(tmp_path), "model.o", f"NVCCFLAGS={NVCC_STRICT}", "CUDA_ARCH=-arch=sm_90"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ((registers, spills),) = [v for k, v in ptxas_report(proc.stdout + proc.stderr).items() if "matmul" in k]
    assert spills == 0 and registers <= 128
