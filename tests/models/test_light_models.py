"""The nine light_* models shipped inside the onnx package: compile, build, and match.

Their weights are all built by ConstantOfShape (constant fills), so their outputs are degenerate. They
prove that the architectures compile; the seeded-random-weights variants below prove the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from helpers import assert_close, run_mlcc, run_ort

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = [
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
]
RTOL = {"densenet121": 2e-3}  # the onnx runner's own tolerances


def dummy_input(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The input the onnx test runner feeds light models: arange(n) / n."""
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


OPT_LEVELS = [0, 1, 2, 3]  # every level must give the same numbers (compiler/pipeline.py)


@pytest.mark.parametrize("opt", OPT_LEVELS)
@pytest.mark.parametrize("name", MODELS)
def test_light_model_matches_expected_output(name, opt, tmp_path):
    path = LIGHT / f"light_{name}.onnx"
    model = onnx.load(path)
    want = numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_0.pb")))
    got = run_mlcc(path, dummy_input(model), tmp_path / name, opt_level=opt)
    assert got[0].shape == want.shape
    np.testing.assert_allclose(got[0], want, rtol=RTOL.get(name, 1e-3), atol=1e-7)


def with_random_weights(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """Replace every ConstantOfShape weight by a seeded random initializer of the same shape.

    Matrices get He-scaled normals; vectors (biases, BatchNorm parameters) get values in [0.5, 1.5],
    which keeps variances positive.
    """
    rng = np.random.default_rng(seed)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    consts = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for t in model.graph.initializer:
        consts[t.name] = numpy_helper.to_array(t)
    kept = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in consts:
            shape = [int(d) for d in consts[node.input[0]]]
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[1:]))
                value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            else:
                value = rng.uniform(0.5, 1.5, shape)
            model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
            continue
        kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


@pytest.mark.parametrize("opt", OPT_LEVELS)
@pytest.mark.parametrize("name", ["squeezenet", "resnet50", "inception_v1", "shufflenet"])
def test_light_architecture_with_random_weights_matches_onnxruntime(name, opt, tmp_path):
    model = with_random_weights(onnx.load(LIGHT / f"light_{name}.onnx"), seed=7)
    feeds = {
        k: np.random.default_rng(1).standard_normal(v.shape).astype(np.float32) for k, v in dummy_input(model).items()
    }
    want = run_ort(model, feeds)
    assert np.std(want[0]) > 1e-4, "the reference output is degenerate; the test would prove nothing"
    got = run_mlcc(model, feeds, tmp_path / name, opt_level=opt)
    assert_close(got, want, rtol=1e-3, atol=1e-5)
