"""Shared test helpers: compile a model with mlcc, run it, and run the onnxruntime reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

import mlcc


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


def assert_close(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
