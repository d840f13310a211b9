"""Shared test helpers: compile a model with mlcc, run it, and run the onnxruntime reference."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from mlcc.cpu import cpu_target

# The --cpu choices whose code this machine can run (besides native): generic everywhere, x86-64-v3 with
# 256-bit vectors (AVX2), x86-64-v4 with 512-bit ones (AVX-512). Tests that run code for every --cpu take
# these; an AVX2 host would die of an illegal instruction in x86-64-v4 code.
HOST_BITS = cpu_target("native").vector_bits
HOST_CPUS = ["generic"] + (["x86-64-v3"] if HOST_BITS >= 256 else []) + (["x86-64-v4"] if HOST_BITS >= 512 else [])


def compile_and_load(model: onnx.ModelProto | str | Path, out_dir: Path, **options) -> mlcc.CompiledModel:
    mlcc.compile(model, out_dir=out_dir, **options)
    return mlcc.load(out_dir)


def run_mlcc(
    model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray], out_dir: Path, **options
) -> list[np.ndarray]:
    with compile_and_load(model, out_dir, **options) as compiled:
        result = compiled.run(feeds)
        return [result[t.name] for t in compiled.outputs]


def run_ort(model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    if proto.ir_version > 10:  # older onnxruntime releases (e.g. on the GPU machine) cap the IR version
        proto = onnx.ModelProto.FromString(proto.SerializeToString())
        proto.ir_version = 10
    data = proto.SerializeToString()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


NEEDS_NVCC = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) not installed")
NVCC_STRICT = "-O3 -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror -Xptxas -v"


def build_c_strictly(model: onnx.ModelProto, out_dir: Path, cpu: str = "generic", opt: str = "-O1") -> str:
    """Generate `model` for the c target (for `cpu`) and build it with -Wall -Wextra -Werror at `opt` (-O3,
    the Makefile's default, runs the analyses that warn of loops overflowing); returns model.c."""
    mlcc.compile(model, out_dir=out_dir, build=False, cpu=cpu)
    proc = subprocess.run(
        ["make", "-s", "-C", str(out_dir), f"CFLAGS={opt} -Wall -Wextra -Werror"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (out_dir / "model.c").read_text()


def compile_cuda_strictly(model: onnx.ModelProto, out_dir: Path) -> tuple[str, str]:
    """Generate `model` for the cuda target and compile it with nvcc for sm_90, warnings as errors (no GPU
    needed); returns model.cu and nvcc's output (ptxas -v: one entry per kernel compiled)."""
    mlcc.compile(model, target="cuda", out_dir=out_dir, build=False)
    proc = subprocess.run(
        ["make", "-s", "-C", str(out_dir), "model.o", f"NVCCFLAGS={NVCC_STRICT}", "CUDA_ARCH=-arch=sm_90"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (out_dir / "model.cu").read_text(), proc.stdout + proc.stderr


def assert_close(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def op_mix() -> onnx.ModelProto:
    """One model over the newer kernel families (reduce, indexed, pointwise, conv_transpose) for the compile check."""
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
        helper.make_node("Sub", ["x", "m"], ["d"]),
        helper.make_node("ReduceLogSumExp", ["d", "axes"], ["l"], keepdims=1),
        helper.make_node("Gelu", ["d"], ["g"], approximate="tanh"),
        helper.make_node("Pad", ["g", "pads"], ["p"], mode="reflect"),
        helper.make_node("Tile", ["l", "reps"], ["t"]),
        helper.make_node("Less", ["p", "t"], ["c"]),
        helper.make_node("Where", ["c", "p", "t"], ["w"]),
        helper.make_node("Resize", ["w", "", "scales"], ["z"], mode="linear"),
        helper.make_node("LayerNormalization", ["z", "gamma"], ["n"]),
        helper.make_node("ArgMax", ["d"], ["y"], axis=-1, keepdims=0),
        helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["ct"], strides=[2], pads=[1, 0], output_padding=[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "op_mix",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8])],
        [
            helper.make_tensor_value_info("n", TensorProto.FLOAT, [2, 3, 20]),
            helper.make_tensor_value_info("y", TensorProto.INT64, [2, 3]),
            helper.make_tensor_value_info("ct", TensorProto.FLOAT, [2, 4, 18]),
        ],
        [
            i64("axes", [-1]),
            i64("pads", [0, 0, 1, 0, 0, 1]),
            i64("reps", [1, 1, 10]),
            numpy_helper.from_array(np.array([1, 1, 2], np.float32), "scales"),
            numpy_helper.from_array(np.ones(20, np.float32), "gamma"),
            numpy_helper.from_array(np.random.default_rng(9).standard_normal((3, 4, 3)).astype(np.float32), "wt"),
            numpy_helper.from_array(np.arange(4, dtype=np.float32), "bt"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def half_model(elem: int) -> onnx.ModelProto:
    """float16/bfloat16 (or float32) model: Conv -> Relu -> Transpose -> Concat -> Softmax -> MatMul -> Gather -> ReduceMean, all in `elem`."""
    rng = np.random.default_rng(3)
    w = {"w": rng.standard_normal((4, 2, 3, 3)) * 0.3, "m": rng.standard_normal((8, 5)) * 0.5}
    inits = [helper.make_tensor(k, elem, v.shape, v.astype(np.float32).ravel().tolist()) for k, v in w.items()]
    inits.append(numpy_helper.from_array(np.array([2, 0, 1], np.int64), "idx"))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["f"]),
        helper.make_node("Transpose", ["f"], ["t"], perm=[1, 0]),
        helper.make_node("Concat", ["t", "t"], ["cat"], axis=1),
        helper.make_node("Softmax", ["cat"], ["s"], axis=-1),
        helper.make_node("MatMul", ["s", "m"], ["mm"]),
        helper.make_node("Gather", ["mm", "idx"], ["g"], axis=0),
        helper.make_node("ReduceMean", ["g"], ["y"], axes=[1], keepdims=0),
    ]
    inits.append(numpy_helper.from_array(np.array([4, 16], np.int64), "shape"))
    graph = helper.make_graph(
        nodes,
        "half",
        [helper.make_tensor_value_info("x", elem, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", elem, None), helper.make_tensor_value_info("mm", elem, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def png_file(
    width: int, height: int, depth: int, color_type: int, idat: bytes | list[bytes], interlace: bool = False
) -> bytes:
    """A PNG file around compressed image data (`idat`: one IDAT chunk's payload, or several)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlace))
    parts = [idat] if isinstance(idat, bytes) else idat
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + b"".join(chunk(b"IDAT", d) for d in parts) + chunk(b"IEND", b"")
    )
