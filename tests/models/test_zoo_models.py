"""The BERT-style encoder and YOLO-style detector of bench/zoo.py (seeded weights) against onnxruntime, the
encoder also with symbolic batch and sequence dims bound by input shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import mlcc
from helpers import assert_close, run_mlcc, run_ort
from mlcc.errors import MlccError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from zoo import bert_encoder, yolo_detector  # noqa: E402


def bert_feeds(batch: int, seq: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.ones((batch, seq), np.int64)
    mask[-1, seq // 2 :] = 0  # the last sequence is padded: the mask must change its outputs
    return {"input_ids": rng.integers(0, 1000, (batch, seq)).astype(np.int64), "attention_mask": mask}


OPT_LEVELS = [0, 1, 2, 3]  # every level must give the same numbers (compiler/pipeline.py)


@pytest.mark.parametrize("opt", OPT_LEVELS)
def test_bert_encoder_matches_onnxruntime(opt, tmp_path):
    model = bert_encoder(layers=2, hidden=384, heads=6, seq=32, batch=2)
    feeds = bert_feeds(2, 32)
    got, want = run_mlcc(model, feeds, tmp_path / "out", opt_level=opt), run_ort(model, feeds)
    assert_close(got, want, rtol=1e-4, atol=1e-4)
    unmasked = run_ort(model, {**feeds, "attention_mask": np.ones((2, 32), np.int64)})
    assert not np.allclose(unmasked[0][-1], want[0][-1], atol=1e-3)  # the mask matters


def test_bert_encoder_with_symbolic_dims_needs_and_takes_input_shapes(tmp_path):
    model = bert_encoder(layers=1, hidden=64, heads=2, seq=16, batch=2)
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        dims[0].dim_param, dims[1].dim_param = "batch", "sequence"
    with pytest.raises(MlccError, match=r"input_ids.*batch|batch.*input_ids"):
        mlcc.compile(model, out_dir=tmp_path / "unbound")
    shapes = {"input_ids": [2, 16], "attention_mask": [2, 16]}
    feeds = bert_feeds(2, 16)
    got = run_mlcc(model, feeds, tmp_path / "out", input_shapes=shapes)
    assert_close(got, run_ort(model, feeds), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opt", OPT_LEVELS)
def test_yolo_detector_matches_onnxruntime(opt, tmp_path):
    model = yolo_detector(size=96, width=8, classes=10)
    x = {"images": np.random.default_rng(1).standard_normal((1, 3, 96, 96)).astype(np.float32)}
    got, want = run_mlcc(model, x, tmp_path / "out", opt_level=opt), run_ort(model, x)
    assert got[0].shape == (1, 14, 12 * 12 + 6 * 6 + 3 * 3)
    assert_close(got, want, rtol=1e-4, atol=1e-4)
