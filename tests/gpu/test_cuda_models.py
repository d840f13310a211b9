"""The CUDA target on a real GPU: models against onnxruntime, device arrays, CUDA graphs on and off."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import mlcc
from helpers import assert_close, run_ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from test_light_models import LIGHT, MODELS, RTOL, dummy_input, with_random_weights  # noqa: E402

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.onnx"


def run_cuda(model, feeds, out: Path, **options) -> list[np.ndarray]:
    mlcc.compile(model, target="cuda", out_dir=out, **options)
    with mlcc.load(out) as compiled:
        result = compiled.run(feeds)
        return [result[t.name] for t in compiled.outputs]


def test_demo_matches_onnxruntime(tmp_path):
    feeds = {"image": np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)}
    got = run_cuda(DEMO, feeds, tmp_path, input_shapes={"image": [4, 3, 32, 32]})
    assert_close(got, run_ort(DEMO, feeds), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_light_model_matches_expected_output(name, tmp_path):
    from onnx import numpy_helper

    path = LIGHT / f"light_{name}.onnx"
    want = numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_0.pb")))
    got = run_cuda(path, dummy_input(onnx.load(path)), tmp_path)
    np.testing.assert_allclose(got[0], want, rtol=RTOL.get(name, 1e-3), atol=1e-7)


@pytest.mark.parametrize("name", ["squeezenet", "resnet50", "inception_v1", "shufflenet"])
def test_light_architecture_with_random_weights(name, tmp_path):
    model = with_random_weights(onnx.load(LIGHT / f"light_{name}.onnx"), seed=7)
    feeds = {
        k: np.random.default_rng(1).standard_normal(v.shape).astype(np.float32) for k, v in dummy_input(model).items()
    }
    assert_close(run_cuda(model, feeds, tmp_path), run_ort(model, feeds), rtol=1e-3, atol=1e-5)


def test_graph_replay_equals_plain_launches(tmp_path, monkeypatch):
    feeds = {"image": np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    shapes = {"image": [1, 3, 32, 32]}
    mlcc.compile(DEMO, target="cuda", out_dir=tmp_path / "g", input_shapes=shapes)
    mlcc.compile(DEMO, target="cuda", out_dir=tmp_path / "n", input_shapes=shapes, cuda_graph=False)
    with mlcc.load(tmp_path / "g") as g, mlcc.load(tmp_path / "n") as n:
        assert g.uses_cuda_graph and not n.uses_cuda_graph
        first = g.run(feeds)["probs"]
        np.testing.assert_array_equal(first, g.run(feeds)["probs"])  # replay is repeatable
        np.testing.assert_array_equal(first, n.run(feeds)["probs"])
    monkeypatch.setenv("MLCC_CUDA_GRAPH", "0")
    with mlcc.load(tmp_path / "g") as off:
        assert not off.uses_cuda_graph
        np.testing.assert_array_equal(first, off.run(feeds)["probs"])


def test_device_arrays_in_and_out(tmp_path):
    cupy = pytest.importorskip("cupy")
    image = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    mlcc.compile(DEMO, target="cuda", out_dir=tmp_path, input_shapes={"image": [2, 3, 32, 32]})
    with mlcc.load(tmp_path) as model:
        want = model.run({"image": image})["probs"]
        stream = cupy.cuda.Stream(non_blocking=True)
        out = model.run_device({"image": cupy.asarray(image)}, stream=stream.ptr)
        stream.synchronize()
        np.testing.assert_array_equal(cupy.asnumpy(out["probs"]), want)
        with pytest.raises(ValueError, match="device array"):
            model.run_device({"image": image})
