"""NonZero, Compress, Unique and NonMaxSuppression: outputs whose shape depends on the data.

Against onnxruntime on seeded random inputs (ties, empty results, every attribute form), the run-time
shape reported through PREFIX_output_shape and trimmed by the loader, compile-time folding to an exact
shape, the clear errors (a data-dependent value read by another op, the cuda target), the C API from C,
and the generated C under -Wall -Wextra -Werror.
"""

from __future__ import annotations

import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc
from helpers import assert_close, build_c_strictly, run_mlcc, run_ort
from mlcc.errors import UnsupportedError

FLOAT, INT64, BOOL, INT32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL, TensorProto.INT32


def model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "dd", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, elem, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def check(m: onnx.ModelProto, feeds: dict, tmp_path) -> list[np.ndarray]:
    got = run_mlcc(m, feeds, tmp_path / "out")
    assert_close(got, run_ort(m, feeds), rtol=0, atol=0)
    return got


@pytest.mark.parametrize(
    "shape,density", [((7,), 0.5), ((3, 4, 5), 0.3), ((2, 3), 0.0), ((2, 3), 1.0), ((), 1.0), ((0, 4), 0.5)]
)
def test_nonzero(shape, density, tmp_path):
    rng = np.random.default_rng(len(shape))
    x = np.asarray((rng.random(shape) < density) * rng.standard_normal(shape), dtype=np.float32)
    m = model([helper.make_node("NonZero", ["x"], ["y"])], [vi("x", FLOAT, shape)], [vi("y", INT64)])
    (y,) = check(m, {"x": x}, tmp_path)
    assert y.shape[1] == np.count_nonzero(x)


def test_nonzero_of_a_constant_folds_to_an_exact_shape(tmp_path):
    c = numpy_helper.from_array(np.array([[0, 3], [2, 0]], np.int32), "c")
    m = model([helper.make_node("NonZero", ["c"], ["y"])], [], [vi("y", INT64)], [c])
    mlcc.compile(m, out_dir=tmp_path / "out")
    with mlcc.load(tmp_path / "out") as compiled:
        assert compiled.outputs[0].shape == (2, 2) and compiled.outputs[0].dynamic_axis is None
        np.testing.assert_array_equal(compiled.run({})["y"], [[0, 1], [1, 0]])


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("length", [0, 2, 3])
def test_compress_runtime_condition(axis, length, tmp_path):
    rng = np.random.default_rng(length)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    cond = rng.random(length) < 0.6
    m = model(
        [helper.make_node("Compress", ["x", "c"], ["y"], **({} if axis is None else {"axis": axis}))],
        [vi("x", FLOAT, [3, 4]), vi("c", BOOL, [length])],
        [vi("y", FLOAT)],
        opset=11,
    )
    check(m, {"x": x, "c": cond}, tmp_path)


def test_compress_constant_condition_has_a_static_shape(tmp_path):
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    c = numpy_helper.from_array(np.array([True, False, True]), "c")
    m = model(
        [helper.make_node("Compress", ["x", "c"], ["y"], axis=1)], [vi("x", INT32, [2, 3, 4])], [vi("y", INT32)], [c]
    )
    mlcc.compile(m, out_dir=tmp_path / "out")
    with mlcc.load(tmp_path / "out") as compiled:
        assert compiled.outputs[0].shape == (2, 2, 4) and compiled.outputs[0].dynamic_axis is None
    check(m, {"x": x}, tmp_path)


@pytest.mark.parametrize("sorted_", [1, 0])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_unique(sorted_, axis, tmp_path):
    rng = np.random.default_rng(sorted_ * 10 + (0 if axis is None else axis + 3))
    x = rng.integers(0, 3, size=(6, 3)).astype(np.float32)  # few values: many repeated rows and columns
    attrs = {"sorted": sorted_} if axis is None else {"sorted": sorted_, "axis": axis}
    outs = ["y", "indices", "inverse", "counts"]
    m = model(
        [helper.make_node("Unique", ["x"], outs, **attrs)],
        [vi("x", FLOAT, [6, 3])],
        [vi(outs[0], FLOAT)] + [vi(o, INT64) for o in outs[1:]],
        opset=11,
    )
    check(m, {"x": x}, tmp_path)


def test_unique_with_only_some_outputs_and_nan(tmp_path):
    x = np.array([2.0, np.nan, 1.0, 2.0, -0.0, 0.0, np.nan, 1.0], np.float32)
    m = model(
        [helper.make_node("Unique", ["x"], ["y", "", "inverse"])],
        [vi("x", FLOAT, [8])],
        [vi("y", FLOAT), vi("inverse", INT64)],
        opset=11,
    )
    y, inverse = run_mlcc(m, {"x": x}, tmp_path / "out")
    want_y, _, want_inverse = np.unique(x, return_index=True, return_inverse=True)  # NaNs collapse into one
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(inverse, want_inverse)


def nms_model(center: int, runtime_limits: bool, with_score: bool = True):
    inputs = [vi("boxes", FLOAT, [2, 50, 4]), vi("scores", FLOAT, [2, 3, 50])]
    names = ["boxes", "scores", "max_out", "iou", "score_min" if with_score else ""]
    inits = []
    limits = {
        "max_out": (np.array([7], np.int64), INT64),
        "iou": (np.array([0.3], np.float32), FLOAT),
        "score_min": (np.array([0.2], np.float32), FLOAT),
    }
    for name, (value, elem) in limits.items():
        if name == "score_min" and not with_score:
            continue
        if runtime_limits:
            inputs.append(vi(name, elem, [1]))
        else:
            inits.append(numpy_helper.from_array(value, name))
    node = helper.make_node("NonMaxSuppression", names, ["selected"], center_point_box=center)
    m = model([node], inputs, [vi("selected", INT64)], inits, opset=11)
    feeds = {k: v for k, (v, _) in limits.items() if runtime_limits and (with_score or k != "score_min")}
    return m, feeds


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("runtime_limits", [False, True])
@pytest.mark.parametrize("with_score", [True, False])
def test_nonmaxsuppression(center, runtime_limits, with_score, tmp_path):
    rng = np.random.default_rng(center * 4 + runtime_limits * 2 + with_score)
    xy = rng.random((2, 50, 2)).astype(np.float32) * 10
    wh = rng.random((2, 50, 2)).astype(np.float32) * 4 + 0.5
    boxes = np.concatenate([xy, wh], -1) if center else np.concatenate([xy, xy + wh], -1)[..., [1, 0, 3, 2]]
    scores = rng.random((2, 3, 50)).astype(np.float32)
    scores[0, 0, :10] = 0.5  # equal scores: the smaller box index goes first
    m, feeds = nms_model(center, runtime_limits, with_score)
    (selected,) = check(m, {"boxes": boxes, "scores": scores, **feeds}, tmp_path)
    assert 0 < selected.shape[0] <= 2 * 3 * 7


def test_output_shape_from_c_and_the_buffer_contract(tmp_path):
    """The C API: output_info holds the bound, output_shape the last run's extent; bad calls get statuses."""
    m = model([helper.make_node("NonZero", ["x"], ["y"])], [vi("x", INT32, [2, 3])], [vi("y", INT64)])
    mlcc.compile(m, out_dir=tmp_path / "out", name="nz")
    (tmp_path / "main.c").write_text(
        r"""
#include <stdio.h>
#include "model.h"
int main(void) {
  const mlcc_tensor_info *info = nz_output_info(0);
  printf("bound %lld %lld axis %d\n", (long long)info->shape[0], (long long)info->shape[1], info->dynamic_axis);
  nz_model *m;
  if (nz_create(&m) != MLCC_OK) return 1;
  int64_t dims[2];
  nz_output_shape(m, 0, dims);
  printf("before %lld\n", (long long)dims[1]);
  int32_t x[6] = {0, 5, 0, 7, 0, 9};
  int64_t y[12];
  const void *in[] = {x};
  void *out[] = {y};
  if (nz_run(m, in, out) != MLCC_OK) return 2;
  nz_output_shape(m, 0, dims);
  printf("after %lld %lld:", (long long)dims[0], (long long)dims[1]);
  for (int i = 0; i < dims[0] * dims[1]; ++i) printf(" %lld", (long long)y[i]);
  printf("\nstatuses %d %d %d\n", nz_output_shape(m, 1, dims), nz_output_shape(m, 0, NULL), nz_output_shape(NULL, 0, dims));
  nz_destroy(m);
  return 0;
}
"""
    )
    out = tmp_path / "out"
    exe = tmp_path / "main"
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-I", str(out), str(tmp_path / "main.c"), str(out / "libnz.a"), "-lm", "-pthread", "-o", str(exe)], check=True)  # fmt: skip
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines == ["bound 2 6 axis 1", "before 0", "after 2 3: 0 1 1 1 0 2", "statuses 9 1 1"]


def test_a_data_dependent_value_read_by_another_op_is_a_clear_error(tmp_path):
    m = model(
        [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Transpose", ["nz"], ["y"])],
        [vi("x", FLOAT, [4])],
        [vi("y", INT64)],
    )
    with pytest.raises(UnsupportedError, match="'nz', whose shape depends on the data .NonZero output.; mlcc supports"):
        mlcc.compile(m, out_dir=tmp_path / "out", build=False)


def test_cuda_target_refuses_data_dependent_outputs(tmp_path):
    m = model([helper.make_node("NonZero", ["x"], ["y"], name="nz")], [vi("x", FLOAT, [4])], [vi("y", INT64)])
    with pytest.raises(
        UnsupportedError, match="NonZero 'nz': outputs whose shape depends on the data are supported on --target c only"
    ):
        mlcc.compile(m, target="cuda", out_dir=tmp_path / "out", build=False)


def test_generated_c_compiles_without_warnings(tmp_path):
    outs = ["u", "ui", "uv", "uc"]
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"]),
        helper.make_node("Compress", ["x", "c"], ["cx"], axis=0),
        helper.make_node("Unique", ["x"], outs, axis=1, sorted=0),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out"], ["sel"]),
    ]
    m = model(
        nodes,
        [
            vi("x", FLOAT, [3, 4]),
            vi("c", BOOL, [2]),
            vi("boxes", FLOAT, [1, 5, 4]),
            vi("scores", FLOAT, [1, 2, 5]),
            vi("max_out", INT64, [1]),
        ],  # fmt: skip
        [
            vi("nz", INT64),
            vi("cx", FLOAT),
            vi("u", FLOAT),
            vi("ui", INT64),
            vi("uv", INT64),
            vi("uc", INT64),
            vi("sel", INT64),
        ],  # fmt: skip
        opset=11,
    )
    source = build_c_strictly(m, tmp_path)
    for kernel in ("nonzero", "compress", "unique", "nms"):
        assert f"_{kernel}(" in source
