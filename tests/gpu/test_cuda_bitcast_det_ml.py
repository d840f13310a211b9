"""The CUDA kernels of BitCast, Det, TfIdfVectorizer, Binarizer, ArrayFeatureExtractor and TreeEnsemble on a
real GPU, against the same model built for the C target."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import mlcc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_ops_bitcast_det_ml import all_ops_model  # noqa: E402

pytestmark = pytest.mark.gpu


def run(target: str, feeds: dict, out: Path) -> dict[str, np.ndarray]:
    mlcc.compile(all_ops_model(), target=target, out_dir=out)
    with mlcc.load(out) as compiled:
        return dict(compiled.run(feeds))


def test_cuda_matches_the_c_target(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 6, size=(5, 4)) / 2).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    feeds = {
        "x": x,
        "u": np.array([0, 1, 2, 0, 255, 7], np.uint8),
        "m": rng.standard_normal((3, 4, 4)),
        "idx": np.array([3, -1], np.int64),
        "tok": rng.integers(2, 9, size=(2, 7)).astype(np.int32),
    }
    want, got = run("c", feeds, tmp_path / "c"), run("cuda", feeds, tmp_path / "cuda")
    assert sorted(got) == sorted(want)
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6, err_msg=name, equal_nan=True)
