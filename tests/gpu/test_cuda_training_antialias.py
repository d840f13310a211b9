"""The optimizer kernels (Adagrad, Adam, Momentum) and antialiased Resize on a real GPU, against onnx's reference."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import mlcc
from helpers import assert_close

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_ops_training_antialias import (  # noqa: E402
    OPTIMIZERS,
    REFERENCE_ONLY,
    RESIZES,
    all_ops_model,
    optimizer_feeds,
    optimizer_model,
    reference,
    resize_case,
)

pytestmark = pytest.mark.gpu


def run_cuda(model, feeds, out: Path) -> list[np.ndarray]:
    mlcc.compile(model, target="cuda", out_dir=out)
    with mlcc.load(out) as compiled:
        result = compiled.run(feeds)
        return [result[t.name] for t in compiled.outputs]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_on_gpu(name, tmp_path):
    op, shapes, elem, r_elem, t, attrs = OPTIMIZERS[name]
    model = optimizer_model(op, shapes, elem, r_elem, **attrs)
    feeds = optimizer_feeds(op, shapes, elem, r_elem, t, seed=len(name))
    got = run_cuda(model, feeds, tmp_path)
    assert_close(got, [w.astype(g.dtype) for g, w in zip(got, reference(model, feeds))], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RESIZES) + sorted(REFERENCE_ONLY))
def test_resize_antialias_on_gpu(name, tmp_path):
    model, feeds = resize_case({**RESIZES, **REFERENCE_ONLY}, name, seed=len(name))
    got = run_cuda(model, feeds, tmp_path)
    atol = 1 if got[0].dtype == np.uint8 else 1e-4
    assert_close(got, reference(model, feeds), rtol=1e-5, atol=atol)


def test_all_ops_model_on_gpu_equals_c(tmp_path):
    rng = np.random.default_rng(11)
    feeds = {"r": np.array(0.05, np.float32), "t": np.array(3, np.int64)}
    for name, n in (("x", 6), ("g", 6), ("v", 6), ("h", 6), ("y", 3), ("g2", 3), ("v2", 3)):
        feeds[name] = np.abs(rng.standard_normal(n)).astype(np.float32)
    feeds["img"] = rng.standard_normal((1, 2, 12, 10)).astype(np.float32)
    got = run_cuda(all_ops_model(), feeds, tmp_path / "cuda")
    mlcc.compile(all_ops_model(), out_dir=tmp_path / "c")
    with mlcc.load(tmp_path / "c") as compiled:
        result = compiled.run(feeds)
        want = [result[t.name] for t in compiled.outputs]
    assert len(got) == 12
    assert_close(got, want, rtol=1e-5, atol=1e-6)
