"""--output-bound (compiler/importer/bounds.py): a data-dependent output stored with the user's bound instead of
the inferred one; each such op's kernel checks it and fails the run with MLCC_ERR_OVER_BOUND rather than write
past it. The option's mistakes are clear errors at compile time."""

from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest
from onnx import TensorProto, helper

import mlcc
import mlcc.backend
from helpers import png_file
from mlcc.errors import MlccError

TOO_MANY = r"would exceed the bound the model was compiled with.*\(status 12\)"


def model(nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def tensor(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def nonzero_model():
    return model(
        [helper.make_node("NonZero", ["x"], ["y"])],
        [tensor("x", TensorProto.FLOAT, [4, 5])],
        [tensor("y", TensorProto.INT64, None)],
    )


def test_nonzero_within_a_tighter_bound_and_beyond_it():
    rep = mlcc.backend.prepare(nonzero_model(), output_bounds={"y": [2, 6]}, verify=True)
    assert rep._model.outputs[0].shape == (2, 6)
    x = np.zeros((4, 5), np.float32)
    x[1, 2] = x[3, 0] = x[3, 4] = 1
    (y,) = rep.run([x])
    np.testing.assert_array_equal(y, np.array(np.nonzero(x)))
    x[0, :] = 1  # 8 non-zero elements for a bound of 6
    with pytest.raises(MlccError, match=TOO_MANY):
        rep.run([x])


def test_compress_unique_and_nms_check_their_bounds():
    cond = model(
        [helper.make_node("Compress", ["x", "c"], ["y"], axis=0)],
        [tensor("x", TensorProto.FLOAT, [6, 2]), tensor("c", TensorProto.BOOL, [6])],
        [tensor("y", TensorProto.FLOAT, None)],
    )
    rep = mlcc.backend.prepare(cond, output_bounds={"y": [3, 2]})
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    (y,) = rep.run([x, np.array([1, 0, 0, 1, 0, 1], bool)])
    np.testing.assert_array_equal(y, x[[0, 3, 5]])
    with pytest.raises(MlccError, match=TOO_MANY):
        rep.run([x, np.array([1, 1, 0, 1, 0, 1], bool)])

    uniq = model(
        [helper.make_node("Unique", ["x"], ["y", "i", "inv", "n"])],
        [tensor("x", TensorProto.INT64, [8])],
        [tensor(o, TensorProto.INT64, None) for o in ("y", "i", "inv", "n")],
    )
    rep = mlcc.backend.prepare(uniq, output_bounds={"y": [3]})
    y, first, inverse, counts = rep.run([np.array([5, 1, 5, 5, 1, 9, 9, 1], np.int64)])
    np.testing.assert_array_equal(y, [1, 5, 9])
    np.testing.assert_array_equal(counts, [3, 3, 2])
    with pytest.raises(MlccError, match=TOO_MANY):
        rep.run([np.array([5, 1, 5, 5, 1, 9, 2, 1], np.int64)])

    nms = model(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores", "limit"], ["sel"])],
        [tensor("boxes", TensorProto.FLOAT, [1, 4, 4]), tensor("scores", TensorProto.FLOAT, [1, 1, 4])],
        [tensor("sel", TensorProto.INT64, None)],
    )
    nms.graph.initializer.append(helper.make_tensor("limit", TensorProto.INT64, [1], [4]))
    rep = mlcc.backend.prepare(nms, output_bounds={"sel": [2, 3]})
    apart = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [5, 5, 6, 6], [5, 5, 6.1, 6]]], np.float32)  # two pairs
    (sel,) = rep.run([apart, np.array([[[0.9, 0.8, 0.7, 0.6]]], np.float32)])
    np.testing.assert_array_equal(sel, [[0, 0, 0], [0, 0, 2]])
    spread = np.array([[[0, 0, 1, 1], [2, 2, 3, 3], [5, 5, 6, 6], [8, 8, 9, 9]]], np.float32)  # four kept
    with pytest.raises(MlccError, match=TOO_MANY):
        rep.run([spread, np.array([[[0.9, 0.8, 0.7, 0.6]]], np.float32)])


def test_an_image_decoder_bound_can_be_larger_or_smaller_than_the_default():
    rows = b"\x00\x00\x01\x02\x00\x03\x04\x05"  # 2 rows of 3 gray pixels, filter 0
    png = png_file(3, 2, 8, 0, zlib.compress(rows))
    dec = model(
        [helper.make_node("ImageDecoder", ["data"], ["image"], pixel_format="Grayscale")],
        [tensor("data", TensorProto.UINT8, [len(png)])],
        [tensor("image", TensorProto.UINT8, None)],
    )
    data = np.frombuffer(png, np.uint8)
    (image,) = mlcc.backend.prepare(dec, output_bounds={"image": [2, 3, 1]}).run([data])
    assert image.shape == (2, 3, 1)
    np.testing.assert_array_equal(image[:, :, 0], [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(MlccError, match=TOO_MANY):
        mlcc.backend.prepare(dec, output_bounds={"image": [1, 3, 1]}).run([data])
    big = mlcc.backend.prepare(dec, output_bounds={"image": [5000, 3, 1]})
    assert big._model.outputs[0].shape == (5000, 3, 1)


@pytest.mark.parametrize(
    "bounds, message",
    [
        ({"z": [2, 6]}, "the model has no output 'z'"),
        ({"y": [6]}, "has rank 2; give 2 positive dims"),
        ({"y": [3, 6]}, "axis 0 of 'y' is not data-dependent"),
    ],
)
def test_mistakes_are_clear_errors(tmp_path, bounds, message):
    with pytest.raises(MlccError, match=message):
        mlcc.compile(nonzero_model(), out_dir=tmp_path / "out", output_bounds=bounds, build=False)


def test_a_static_output_takes_no_bound(tmp_path):
    relu = model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [tensor("x", TensorProto.FLOAT, [3])],
        [tensor("y", TensorProto.FLOAT, [3])],
    )
    with pytest.raises(MlccError, match=r"shape \[3\] is static; only data-dependent outputs take a bound"):
        mlcc.compile(relu, out_dir=tmp_path / "out", output_bounds={"y": [2]}, build=False)


def test_the_cli_option(tmp_path):
    import onnx

    onnx.save(nonzero_model(), tmp_path / "m.onnx")
    cli = [sys.executable, "-m", "mlcc.cli", str(tmp_path / "m.onnx"), "--no-build"]
    ok = subprocess.run([*cli, "-o", str(tmp_path / "a"), "--output-bound", "y=2,6"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "output0_shape[] = { 2, 6 };" in (tmp_path / "a" / "model.c").read_text()
    bad = subprocess.run([*cli, "-o", str(tmp_path / "b"), "--output-bound", "y=2,x"], capture_output=True, text=True)
    assert bad.returncode != 0 and "expected NAME=D0,D1,... with positive dims" in bad.stderr
