"""Generated and runtime C under -Wall -Wextra -Werror, AddressSanitizer + UndefinedBehaviorSanitizer, and
valgrind. `make test` runs a small set of models; `make sanitize` (MLCC_SANITIZE_MODELS=all) runs them all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import mlcc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from test_light_models import LIGHT, with_random_weights  # noqa: E402

from helpers import HOST_CPUS  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STRICT = "-std=c11 -Wall -Wextra -Werror -g -fno-omit-frame-pointer"
SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all"


def kernel_mix() -> onnx.ModelProto:
    """The kernels whose loops index by hand with masks, ranges and stack buffers: the channel-major direct
    convolution's one-pass epilogue, max pooling by planes and by rows at stride 2 (padded and not),
    depthwise convolutions in plane, row, blocked and column-phase mode with epilogues, heavy (SiLU)
    epilogues run after the tiles of direct and packed convolutions and of a Gemm, and convolutions of 16
    channels from a channel-blocked input (PadBlocks: padded, at stride 2, with SiLU), a 1x1 convolution
    reading its input in place (with AVX2 and AVX-512 its partial last strip packed), and strided ones over
    their input's phases (PadPhases) and by im2col."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def weight(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w16", "b16"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["same"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        helper.make_node("MaxPool", ["same"], ["half"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["half", "wd", "b16"], ["d"], pads=[1, 1, 1, 1], group=16),
        helper.make_node("Clip", ["d", "lo", "hi"], ["y1"]),
        helper.make_node("Conv", ["x2", "wd8", "b8"], ["e"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Sigmoid", ["e"], ["y2"]),
        helper.make_node("MaxPool", ["half"], ["quarter"], kernel_shape=[2, 2], strides=[2, 2]),  # 5x5
        helper.make_node("Conv", ["quarter", "wd", "b16"], ["q"], pads=[1, 2, 1, 0], group=16),  # blocked
        helper.make_node("Relu", ["q"], ["y3"]),
        # max pooling by rows unpadded at stride 2; a stride-2 depthwise convolution from column phases
        helper.make_node("MaxPool", ["x3"], ["p3"], kernel_shape=[3, 3], strides=[2, 2]),  # 19 columns
        helper.make_node("Conv", ["x3", "wd8", "b8"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2], group=8),
        helper.make_node("Relu", ["f"], ["y4"]),
        # SiLU epilogues after the tiles: direct and packed (stride 2) convolutions, a Gemm with C
        helper.make_node("Conv", ["x5", "w6g", "b16"], ["g"], pads=[1, 1, 1, 1]),  # 6 channels: not blocked
        helper.make_node("Sigmoid", ["g"], ["gs"]),
        helper.make_node("Mul", ["g", "gs"], ["y5"]),
        helper.make_node("Conv", ["x", "w16", "b16"], ["h"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Sigmoid", ["h"], ["hs"]),
        helper.make_node("Mul", ["h", "hs"], ["y6"]),
        helper.make_node("Conv", ["x5", "w6p", "b16"], ["u"], strides=[2, 2]),  # 6 channels: over the phases
        helper.make_node("Sigmoid", ["u"], ["us"]),
        helper.make_node("Mul", ["u", "us"], ["y8"]),
        helper.make_node("Conv", ["x5", "w40", "b40"], ["t"], strides=[2, 2], pads=[0, 1, 1, 0]),  # 40: im2col
        helper.make_node("Relu", ["t"], ["y10"]),
        # a 1x1 convolution reading its input in place (200 pixels: 8 past the last whole strip of 16 or 32)
        helper.make_node("Conv", ["x2", "w1x1"], ["v"]),
        helper.make_node("Relu", ["v"], ["y9"]),
        helper.make_node("Gemm", ["x4", "wg", "bg"], ["k"]),
        helper.make_node("Sigmoid", ["k"], ["ks"]),
        helper.make_node("Mul", ["k", "ks"], ["y7"]),
    ]
    inits = [weight("w16", (16, 16, 3, 3)), weight("b16", (16,)), weight("wd", (16, 1, 3, 3)),
             weight("wd8", (8, 1, 3, 3)), weight("b8", (8,)), weight("wg", (30, 21)), weight("bg", (21,)),
             weight("w6g", (16, 6, 3, 3)), weight("w6p", (16, 6, 3, 3)), weight("w1x1", (12, 8, 1, 1)),
             weight("w40", (40, 6, 3, 3)), weight("b40", (40,)),
             numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 20, 20]),
              helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 8, 5, 40]),
              helper.make_tensor_value_info("x3", TensorProto.FLOAT, [1, 8, 12, 40]),
              helper.make_tensor_value_info("x4", TensorProto.FLOAT, [5, 30]),
              helper.make_tensor_value_info("x5", TensorProto.FLOAT, [1, 6, 12, 40])]  # fmt: skip
    names = ("y1", "y2", "y3", "p3", "y4", "y5", "y6", "y7", "y8", "y9", "y10")
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names]
    graph = helper.make_graph(nodes, "kernel_mix", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def models() -> dict[str, tuple[object, dict]]:
    found = {"demo": (ROOT / "examples" / "demo.onnx", {"image": [2, 3, 32, 32]}), "kernel_mix": (kernel_mix(), {})}
    for name in (
        "squeezenet",
        "shufflenet",
        "inception_v1",
        "resnet50",
        "densenet121",
        "bvlc_alexnet",
        "zfnet512",
        "inception_v2",
        "vgg19",
    ):
        found[name] = (with_random_weights(onnx.load(LIGHT / f"light_{name}.onnx"), seed=3), {})
    return found


MODELS = models()
SELECTED = os.environ.get("MLCC_SANITIZE_MODELS", "demo,kernel_mix,squeezenet")
CHOSEN = list(MODELS) if SELECTED == "all" else SELECTED.split(",")


def build_and_run(
    name: str, tmp: Path, cflags: str, runner: list[str], threads: int = 1, cpu: str = "generic"
) -> np.ndarray:
    model, shapes = MODELS[name]
    out = tmp / "lib"
    mlcc.compile(model, out_dir=out, input_shapes=shapes, name="m", weights="external", build=False, cpu=cpu)
    subprocess.run(["make", "-s", "-C", str(out), "libm.a", f"CFLAGS=-O1 {cflags}"], check=True)
    exe = tmp / "driver"
    subprocess.run(
        [
            "cc",
            *cflags.split(),
            "-DMODEL=m",
            "-I",
            str(out),
            str(HERE / "driver.c"),
            str(out / "libm.a"),
            "-lm",
            "-pthread",
            "-o",
            str(exe),
        ],
        check=True,
    )
    shapes = [tuple(t["shape"]) for t in json.loads((out / "model.json").read_text())["inputs"]]
    feeds = b"".join(np.random.default_rng(0).standard_normal(s).astype(np.float32).tobytes() for s in shapes)
    (tmp / "in.bin").write_bytes(feeds)
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    env["MLCC_NUM_THREADS"] = str(threads)  # > 1: the thread pool (runtime_c/mlcc_pool.h) runs the GEMM kernels
    env["TSAN_OPTIONS"] = "halt_on_error=1"
    proc = subprocess.run(
        [*runner, str(exe), str(tmp / "in.bin"), str(tmp / "out.bin"), str(out / "weights.bin")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return np.frombuffer((tmp / "out.bin").read_bytes(), dtype=np.float32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", CHOSEN)
def test_asan_ubsan_clean(name, threads, tmp_path):
    values = build_and_run(name, tmp_path, f"{STRICT} {SANITIZE}", [], threads)
    assert np.all(np.isfinite(values))


@pytest.mark.skipif("x86-64-v4" not in HOST_CPUS, reason="this host has no AVX-512")
def test_asan_ubsan_clean_with_the_avx512_kernels(tmp_path):
    # the kernels only AVX-512 builds take: depthwise blocks copied by register transposes (kernel_mix's
    # 5x5 map of 16 channels), pixel-major tiles stored transposed; and depthwise by vector rows (AVX2 too)
    values = build_and_run("kernel_mix", tmp_path, f"{STRICT} {SANITIZE}", [], threads=2, cpu="x86-64-v4")
    source = (tmp_path / "lib" / "model.c").read_text()
    assert "typedef float mlcc_v16 " in source and "float ring[" in source
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("name", CHOSEN)
def test_thread_sanitizer_finds_no_race_in_the_pool(name, tmp_path):
    values = build_and_run(name, tmp_path, f"{STRICT} -fsanitize=thread -g", [], threads=3)
    assert np.all(np.isfinite(values))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
@pytest.mark.parametrize("name", CHOSEN)
def test_valgrind_clean(name, tmp_path):
    runner = ["valgrind", "--error-exitcode=9", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", "-q"]
    values = build_and_run(name, tmp_path, STRICT, runner)
    assert np.all(np.isfinite(values))


def test_the_kernel_mix_holds_the_kernels_it_names(tmp_path):
    mlcc.compile(kernel_mix(), out_dir=tmp_path, build=False)
    source = (tmp_path / "model.c").read_text()
    for marker in (
        "the whole plane as one run",  # max pooling by planes
        "one output row at a time, separably",  # by rows
        "zero_row",  # depthwise by rows
        "_Alignas(64) float xt[",  # depthwise blocked
        "column phases",  # depthwise at stride 2
        "long runs overlap",  # a heavy epilogue after a packed convolution's or GEMM's tiles
        "dependency chains overlap",  # after a direct convolution's
        "channels side by side per pixel",  # a channel-blocked input (PadBlocks)
        "mlcc_ukr_gather",  # the pixel-major kernel that reads it
        "mlcc_ukr_strided_clamp(kc",  # a 1x1 convolution reading its input in place, bias and Relu in registers
        "every column phase inside the row",  # a strided input split into its phases (PadPhases)
        "mlcc_ukr_packed_clamp(kc, ap, 0, bp",  # im2col strips, bias and Relu in registers
    ):
        assert marker in source, marker
