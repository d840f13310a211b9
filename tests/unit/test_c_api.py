"""The generated C API used from C: the example program, two models and two instances in one process,
external weights, and error statuses."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.onnx"
DEMO_SHAPE = {"image": [1, 3, 32, 32]}


def mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def cc(*args: str) -> None:
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", *args, "-lm", "-pthread"], check=True)


def test_example_program_runs_the_static_library(tmp_path):
    out = tmp_path / "demo"
    mlcc.compile(DEMO, out_dir=out, input_shapes=DEMO_SHAPE, name="demo")
    exe = tmp_path / "demo_main"
    cc("-I", str(out), str(ROOT / "examples" / "main.c"), str(out / "libdemo.a"), "-o", str(exe))
    image = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(image.tobytes())
    run = subprocess.run(
        [str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True, text=True, check=True
    )
    assert run.stdout.startswith("probs:")
    from_c = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.float32).reshape(1, 10)
    with mlcc.load(out) as model:
        from_python = model.run({"image": image})["probs"]
    np.testing.assert_array_equal(from_c, from_python)
    assert abs(from_c.sum() - 1) < 1e-5


TWO_MODELS_C = r"""
#include <math.h>
#include <stdio.h>
#include "alpha/model.h"
#include "beta/model.h"
int main(void) {
  static float image[1 * 3 * 32 * 32], x[2 * 4], p1[10], p2[10], y[12];
  for (int i = 0; i < 3072; ++i) image[i] = (float)(i % 13) / 13.0f;
  for (int i = 0; i < 8; ++i) x[i] = (float)i / 8.0f;
  alpha_model *a1, *a2;
  beta_model *b;
  if (alpha_create(&a1) || alpha_create(&a2) || beta_create(&b)) return 1;
  const void *ai[] = {image}, *bi[] = {x};
  void *ao1[] = {p1}, *ao2[] = {p2}, *bo[] = {y};
  if (alpha_run(a1, ai, ao1) || beta_run(b, bi, bo) || alpha_run(a2, ai, ao2)) return 2;
  for (int i = 0; i < 10; ++i) if (p1[i] != p2[i]) return 3;
  for (int i = 0; i < 10; ++i) printf("%.9g ", p1[i]);
  for (int i = 0; i < 12; ++i) printf("%.9g ", y[i]);
  printf("\n");
  alpha_destroy(a1); alpha_destroy(a2); beta_destroy(b);
  return 0;
}
"""


def test_two_models_and_two_instances_in_one_process(tmp_path):
    mlcc.compile(DEMO, out_dir=tmp_path / "alpha", input_shapes=DEMO_SHAPE, name="alpha")
    mlcc.compile(mlp(), out_dir=tmp_path / "beta", name="beta")
    src = tmp_path / "two.c"
    src.write_text(TWO_MODELS_C)
    exe = tmp_path / "two"
    cc(
        "-I",
        str(tmp_path),
        "-I",
        str(tmp_path / "alpha"),
        str(src),
        str(tmp_path / "alpha" / "libalpha.a"),
        str(tmp_path / "beta" / "libbeta.a"),
        "-o",
        str(exe),
    )
    values = np.array(
        subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split(), dtype=np.float32
    )
    image = (np.arange(3072) % 13 / 13.0).astype(np.float32).reshape(1, 3, 32, 32)
    x = (np.arange(8) / 8.0).astype(np.float32).reshape(2, 4)
    with mlcc.load(tmp_path / "alpha") as a, mlcc.load(tmp_path / "beta") as b:
        np.testing.assert_allclose(values[:10], a.run({"image": image})["probs"].reshape(-1), rtol=1e-6)
        np.testing.assert_allclose(values[10:], b.run({"x": x})["y"].reshape(-1), rtol=1e-6)


def test_external_weights(tmp_path):
    mlcc.compile(DEMO, out_dir=tmp_path / "emb", input_shapes=DEMO_SHAPE, name="demo")
    mlcc.compile(DEMO, out_dir=tmp_path / "ext", input_shapes=DEMO_SHAPE, name="demo", weights="external")
    image = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with mlcc.load(tmp_path / "emb") as a, mlcc.load(tmp_path / "ext") as b:
        np.testing.assert_array_equal(a.run({"image": image})["probs"], b.run({"image": image})["probs"])
    assert (tmp_path / "ext" / "libdemo.so").stat().st_size < (tmp_path / "emb" / "libdemo.so").stat().st_size

    lib = ctypes.CDLL(str(tmp_path / "ext" / "libdemo.so"))
    handle = ctypes.c_void_p()
    assert lib.demo_create(ctypes.byref(handle)) == 5  # MLCC_ERR_NO_EMBEDDED_WEIGHTS
    assert lib.demo_create_from_file(ctypes.byref(handle), b"/nonexistent/weights.bin") == 3
    assert lib.demo_create_from_file(ctypes.byref(handle), str(tmp_path / "emb" / "weights.bin").encode()) == 4
    mlcc.compile(mlp(), out_dir=tmp_path / "other", name="demo", build=False)
    assert lib.demo_create_from_file(ctypes.byref(handle), str(tmp_path / "other" / "weights.bin").encode()) == 4
    assert lib.demo_create_from_file(None, b"x") == 1
    lib.demo_status_message.restype = ctypes.c_char_p
    assert b"weights" in lib.demo_status_message(4)


def test_run_rejects_null_arguments(tmp_path):
    mlcc.compile(mlp(), out_dir=tmp_path, name="m")
    lib = ctypes.CDLL(str(tmp_path / "libm.so"))
    handle = ctypes.c_void_p()
    assert lib.m_create(ctypes.byref(handle)) == 0
    lib.m_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    assert lib.m_run(None, None, None) == 1
    assert lib.m_run(handle, None, None) == 1
    null_ptrs = (ctypes.c_void_p * 1)()
    assert lib.m_run(handle, null_ptrs, null_ptrs) == 1
    lib.m_destroy.argtypes = [ctypes.c_void_p]
    lib.m_destroy(handle)
    lib.m_destroy(None)


def test_loader_checks_names_shapes_and_dtypes(tmp_path):
    with _mlp_model(tmp_path) as model:
        assert [t.name for t in model.inputs] == ["x"] and model.inputs[0].shape == (2, 4)
        assert model.outputs[0].dtype == np.float32
        good = np.zeros((2, 4), np.float32)
        with pytest.raises(ValueError, match="missing"):
            model.run({})
        with pytest.raises(ValueError, match="unknown"):
            model.run({"x": good, "z": good})
        with pytest.raises(ValueError, match="shape"):
            model.run({"x": np.zeros((4, 2), np.float32)})
        with pytest.raises(ValueError, match="dtype"):
            model.run({"x": good.astype(np.float64)})
        np.testing.assert_allclose(model.run({"x": good})["y"], np.zeros((2, 6)))


def _mlp_model(tmp_path: Path) -> mlcc.CompiledModel:
    mlcc.compile(mlp(), out_dir=tmp_path, name="m")
    return mlcc.load(tmp_path)


def test_loader_refuses_a_library_that_does_not_match_its_manifest(tmp_path):
    mlcc.compile(mlp(), out_dir=tmp_path, name="m")
    manifest = (tmp_path / "model.json").read_text()
    (tmp_path / "model.json").write_text(manifest.replace('"model_hash": "', '"model_hash": "00'))
    with pytest.raises(mlcc.MlccError, match="model hash"):
        mlcc.load(tmp_path)


def test_run_checked_sizes_and_handles_that_are_not_live(tmp_path):
    mlcc.compile(mlp(), out_dir=tmp_path, name="m")
    lib = ctypes.CDLL(str(tmp_path / "libm.so"))
    lib.m_run_checked.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 4
    lib.m_run.argtypes = [ctypes.c_void_p] * 3
    lib.m_destroy.argtypes = [ctypes.c_void_p]
    handle = ctypes.c_void_p()
    assert lib.m_create(ctypes.byref(handle)) == 0
    x, y = np.ones((2, 4), np.float32), np.zeros((2, 6), np.float32)
    ins = (ctypes.c_void_p * 1)(x.ctypes.data)
    outs = (ctypes.c_void_p * 1)(y.ctypes.data)
    sizes = lambda *n: (ctypes.c_int64 * len(n))(*n)  # noqa: E731
    assert lib.m_run_checked(handle, ins, sizes(32), outs, sizes(48)) == 0
    assert np.abs(y).sum() > 0
    assert lib.m_run_checked(handle, ins, sizes(31), outs, sizes(48)) == 8  # MLCC_ERR_SIZE_MISMATCH
    assert lib.m_run_checked(handle, ins, sizes(32), outs, sizes(96)) == 8
    assert lib.m_run_checked(handle, ins, None, outs, sizes(48)) == 1
    not_an_instance = ctypes.create_string_buffer(256)  # zeroed memory: no live-instance mark
    assert lib.m_run(ctypes.addressof(not_an_instance), ins, outs) == 7  # MLCC_ERR_BAD_HANDLE
    lib.m_destroy(ctypes.addressof(not_an_instance))  # ignored, not freed
    lib.m_destroy(handle)
