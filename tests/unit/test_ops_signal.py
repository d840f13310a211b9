"""DFT, STFT and MelWeightMatrix against onnxruntime (and onnx's ReferenceEvaluator where onnxruntime departs
from it: IRFFT with an explicit dft_length) on seeded random inputs: forward and inverse, one-sided, real and
complex values, dft_length padding and truncation, the axis attribute (opset 17) and input (opset 20), STFT's
frame_step, window, frame_length and onesided, MelWeightMatrix folded and computed at run time; the numpy
references (constant folding); the errors; the generated C under -Wall -Wextra -Werror and the CUDA through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import mlcc
from helpers import NEEDS_NVCC, assert_close, build_c_strictly, compile_cuda_strictly, run_mlcc, run_ort

FLOAT, DOUBLE, FLOAT16, INT32, INT64 = (
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.FLOAT16,
    TensorProto.INT32,
    TensorProto.INT64,
)


def random(shape, elem: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(helper.tensor_dtype_to_np_dtype(elem))


def single(op: str, opset: int, feeds: dict, consts: dict, inputs: list[str], out_elem: int, **attrs):
    """A one-node model: `inputs` names graph inputs (in `feeds`), initializers (in `consts`) or "" (absent)."""
    node = helper.make_node(op, inputs, ["Y"], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info("Y", out_elem, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ReferenceEvaluator(model).run(None, feeds)


# (opset, input shape, element type, dft_length or None, axis or None, attributes)
DFT = {
    "opset17_real_default_axis": (17, (2, 8, 3, 1), FLOAT, None, None, {}),
    "opset17_complex_axis2": (17, (2, 3, 7, 2), FLOAT, None, None, {"axis": 2}),
    "opset17_negative_axis": (17, (2, 5, 4, 2), FLOAT, None, None, {"axis": -2}),
    "opset17_inverse_complex": (17, (3, 9, 2), DOUBLE, None, None, {"inverse": 1}),
    "opset17_inverse_real": (17, (3, 6, 1), FLOAT, None, None, {"inverse": 1}),
    "opset17_rfft_odd": (17, (2, 9, 1), FLOAT, None, None, {"onesided": 1}),
    "opset17_pad_dft_length": (17, (2, 5, 2), FLOAT, np.int64(12), None, {}),
    "opset17_truncate_dft_length_int32": (17, (2, 11, 1), FLOAT, np.int32(6), None, {}),
    "opset17_rfft_truncate": (17, (2, 13, 3, 1), DOUBLE, np.int64(9), None, {"onesided": 1}),
    "opset17_inverse_pad": (17, (2, 5, 2), FLOAT, np.int64(8), None, {"inverse": 1}),
    "opset17_irfft_default_length": (17, (2, 6, 3, 2), FLOAT, None, None, {"inverse": 1, "onesided": 1}),
    "opset20_default_axis": (20, (2, 3, 10, 1), FLOAT, None, None, {}),
    "opset20_axis_input_0": (20, (6, 2, 2), FLOAT, None, np.int64(0), {}),
    "opset20_axis_input_negative": (20, (2, 7, 3, 2), DOUBLE, None, np.int64(-3), {"inverse": 1}),
    "opset20_rfft_pad": (20, (4, 6, 1), FLOAT, np.int64(10), np.int64(1), {"onesided": 1}),
    "opset20_long_line": (20, (1, 257, 2), DOUBLE, None, np.int64(1), {}),
    "opset20_float16": (20, (2, 8, 2), FLOAT16, None, np.int64(1), {}),
}


def dft_model(opset, x, elem, length, axis, attrs):
    consts, names = {}, ["X"]
    if length is not None:
        consts["dft_length"] = length
    names.append("dft_length" if length is not None else "")
    if axis is not None:
        consts["axis"] = axis
        names.append("axis")
    while names[-1] == "":
        names.pop()
    return single("DFT", opset, {"X": x}, consts, names, elem, **attrs)


@pytest.mark.parametrize("name", sorted(DFT))
def test_dft_matches_onnxruntime(name, tmp_path):
    opset, shape, elem, length, axis, attrs = DFT[name]
    x = random(shape, elem, seed=len(name))
    model = dft_model(opset, x, elem, length, axis, attrs)
    got, want = run_mlcc(model, {"X": x}, tmp_path / "out"), run_ort(model, {"X": x})
    tol = 2e-3 if elem == FLOAT16 else 1e-4
    assert_close(got, want, rtol=tol, atol=tol)
    if elem == DOUBLE:  # double accumulation: the double result matches numpy's to near machine precision
        assert_close(got, reference(model, {"X": x}), rtol=1e-12, atol=1e-12)


# IRFFT with dft_length: the one-sided input is cut or zero-padded to dft_length // 2 + 1 bins (numpy's irfft,
# onnx's reference); onnxruntime pads differently, so these compare with the ReferenceEvaluator.
IRFFT = {
    "irfft_even_pad": ((2, 4, 2), 10),
    "irfft_odd_truncate": ((2, 6, 3, 2), 7),
    "irfft_even_truncate": ((1, 9, 2), 6),
}


@pytest.mark.parametrize("name", sorted(IRFFT))
def test_irfft_with_dft_length_matches_reference(name, tmp_path):
    shape, length = IRFFT[name]
    x = random(shape, FLOAT, seed=len(name))
    model = dft_model(17, x, FLOAT, np.int64(length), None, {"inverse": 1, "onesided": 1})
    got = run_mlcc(model, {"X": x}, tmp_path / "out")
    assert got[0].shape[1] == length
    assert_close(got, reference(model, {"X": x}), rtol=1e-4, atol=1e-5)


def test_dft_round_trip_recovers_the_signal(tmp_path):
    x = random((2, 12, 1), FLOAT, seed=3)
    nodes = [
        helper.make_node("DFT", ["X"], ["F"], axis=1, onesided=1),
        helper.make_node("DFT", ["F", "n"], ["Y"], axis=1, onesided=1, inverse=1),
    ]
    graph = helper.make_graph(
        nodes,
        "round_trip",
        [helper.make_tensor_value_info("X", FLOAT, x.shape)],
        [helper.make_tensor_value_info("Y", FLOAT, None)],
        [numpy_helper.from_array(np.array(12, np.int64), "n")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (got,) = run_mlcc(model, {"X": x}, tmp_path / "out")
    np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-5)


def test_dft_twiddles_stay_accurate_on_a_long_line(tmp_path):
    """A pure tone of frequency 4090 over 4099 points: one bin of height n, every other bin zero. Angles from the
    unreduced index product k*n (up to 1.7e7) would be off by ~1e-9 here; reduced ones by ~1e-12."""
    n, f = 4099, 4090
    angle = 2 * np.pi * (f * np.arange(n) % n) / n
    x = np.stack([np.cos(angle), np.sin(angle)], -1)[None]
    model = dft_model(20, x, DOUBLE, None, np.int64(1), {})
    (got,) = run_mlcc(model, {"X": x}, tmp_path / "out")
    want = np.zeros((1, n, 2))
    want[0, f, 0] = n
    np.testing.assert_allclose(got, want, atol=1e-10)


# (signal shape, element type, frame_step, window length or None, frame_length or None, attributes)
STFT = {
    "real_frame_length": ((1, 64, 1), FLOAT, 8, None, 16, {}),
    "real_window": ((2, 50, 1), FLOAT, 6, 12, None, {}),
    "real_window_and_length_two_sided": ((2, 40, 1), FLOAT, 5, 10, 10, {"onesided": 0}),
    "complex_two_sided": ((2, 33, 2), DOUBLE, 4, 9, None, {"onesided": 0}),
    "complex_onesided": ((1, 30, 2), FLOAT, 7, None, 8, {}),
    "odd_frame_int32_step": ((3, 45, 1), DOUBLE, 3, None, 11, {}),
}


@pytest.mark.parametrize("name", sorted(STFT))
def test_stft_matches_onnxruntime(name, tmp_path):
    shape, elem, step, window, length, attrs = STFT[name]
    x = random(shape, elem, seed=len(name))
    feeds = {"signal": x}
    step_type = np.int32 if "int32" in name else np.int64
    consts = {"frame_step": step_type(step)}
    names = ["signal", "frame_step", "", ""]
    if window is not None:  # a run-time input: only its shape matters at compile time
        feeds["window"] = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)).astype(x.dtype)
        names[2] = "window"
    if length is not None:
        consts["frame_length"] = step_type(length)
        names[3] = "frame_length"
    while names[-1] == "":
        names.pop()
    model = single("STFT", 17, feeds, consts, names, elem, **attrs)
    got, want = run_mlcc(model, feeds, tmp_path / "out"), run_ort(model, feeds)
    assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert_close(got, reference(model, feeds), rtol=1e-4, atol=1e-4)


def test_stft_frame_length_defaults_to_the_signal_length(tmp_path):
    x = random((2, 20, 1), FLOAT, seed=5)
    model = single("STFT", 17, {"signal": x}, {"frame_step": np.int64(3)}, ["signal", "frame_step"], FLOAT)
    (got,) = run_mlcc(model, {"signal": x}, tmp_path / "out")
    assert got.shape == (2, 1, 11, 2)
    np.testing.assert_allclose(got, reference(model, {"signal": x})[0], rtol=1e-5, atol=1e-5)


MEL_INPUTS = ["num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"]

# (num_mel_bins, dft_length, sample_rate, lower, upper, edge element type, output_datatype or None)
MEL = {
    "default_float": (8, 16, 8192, 0.0, 4096.0, FLOAT, None),
    "speech_double": (40, 400, 16000, 20.0, 7600.0, DOUBLE, TensorProto.DOUBLE),
    "narrow_band": (5, 64, 22050, 300.0, 3000.0, FLOAT, None),
    "int32_output": (6, 32, 8000, 0.0, 4000.0, FLOAT, TensorProto.INT32),
}


def mel_model(case, runtime: bool):
    count, length, rate, lower, upper, elem, out = MEL[case]
    np_edge = helper.tensor_dtype_to_np_dtype(elem).type
    values = [np.int64(count), np.int64(length), np.int64(rate), np_edge(lower), np_edge(upper)]
    arrays = {k: np.asarray(v) for k, v in zip(MEL_INPUTS, values)}
    feeds = {k: arrays[k] for k in MEL_INPUTS[2:]} if runtime else {}
    consts = {k: v for k, v in arrays.items() if k not in feeds}
    attrs = {} if out is None else {"output_datatype": out}
    model = single("MelWeightMatrix", 17, feeds, consts, MEL_INPUTS, out or FLOAT, **attrs)
    return model, feeds


@pytest.mark.parametrize("runtime", [False, True], ids=["folded", "runtime"])
@pytest.mark.parametrize("case", sorted(MEL))
def test_melweightmatrix_matches_onnxruntime(case, runtime, tmp_path):
    model, feeds = mel_model(case, runtime)
    got = run_mlcc(model, feeds, tmp_path / "out")
    if MEL[case][-1] != TensorProto.DOUBLE:  # onnxruntime has no double MelWeightMatrix
        assert_close(got, run_ort(model, feeds), rtol=1e-5, atol=1e-6)
    assert_close(got, reference(model, feeds), rtol=1e-5, atol=1e-6)
    source = (tmp_path / "out" / "model.c").read_text()
    assert ("_melweightmatrix(" in source) == runtime


def test_melweightmatrix_with_a_zero_sample_rate_at_run_time_gives_no_weights(tmp_path):
    """Non-finite band edges give weight 0, never NaN (which an integer output could not hold)."""
    for case in ("default_float", "int32_output"):
        model, feeds = mel_model(case, runtime=True)
        feeds["sample_rate"] = np.asarray(np.int64(0))
        (got,) = run_mlcc(model, feeds, tmp_path / case)
        assert got.shape == (MEL[case][1] // 2 + 1, MEL[case][0]) and not np.any(got)


def test_folded_dft_and_stft_match_onnxruntime(tmp_path):
    """Constant signals fold to their numpy references at compile time."""
    x = random((2, 9, 2), FLOAT, seed=11)
    nodes = [
        helper.make_node("DFT", ["x", "n"], ["d"], axis=1, inverse=1),
        helper.make_node("STFT", ["xr", "step", "", "len"], ["s"]),
    ]
    graph = helper.make_graph(
        nodes,
        "folded",
        [],
        [helper.make_tensor_value_info("d", FLOAT, None), helper.make_tensor_value_info("s", FLOAT, None)],
        [
            numpy_helper.from_array(x, "x"),
            numpy_helper.from_array(x[..., :1].copy(), "xr"),
            numpy_helper.from_array(np.array(12, np.int64), "n"),
            numpy_helper.from_array(np.array(2, np.int64), "step"),
            numpy_helper.from_array(np.array(4, np.int64), "len"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert_close(run_mlcc(model, {}, tmp_path / "out"), run_ort(model, {}), rtol=1e-5, atol=1e-5)
    source = (tmp_path / "out" / "model.c").read_text()
    assert "_dft(" not in source and "_stft(" not in source, "not folded"


def bad(model: onnx.ModelProto, match: str, tmp_path) -> None:
    with pytest.raises(mlcc.MlccError, match=match):
        mlcc.compile(model, out_dir=tmp_path, build=False)


def test_invalid_models_are_reported(tmp_path):
    x = random((2, 6, 2), FLOAT, seed=1)
    xr = x[..., :1].copy()
    bad(dft_model(20, x, FLOAT, None, np.int64(-1), {}), "axis -1 is out of range", tmp_path / "a")
    bad(dft_model(17, x, FLOAT, None, None, {"axis": 2}), "axis 2 is out of range", tmp_path / "b")
    bad(dft_model(17, x, FLOAT, None, None, {"onesided": 1}), "RFFT", tmp_path / "c")
    bad(dft_model(17, xr, FLOAT, None, None, {"onesided": 1, "inverse": 1}), "IRFFT", tmp_path / "d")
    bad(dft_model(17, x, FLOAT, np.int64(0), None, {}), "dft_length must be positive", tmp_path / "e")
    bad(dft_model(17, random((2, 6, 3), FLOAT, 2), FLOAT, None, None, {}), "last axis of 1", tmp_path / "f")
    stft = {"signal": xr}
    too_long = single("STFT", 17, stft, {"s": np.int64(2), "l": np.int64(7)}, ["signal", "s", "", "l"], FLOAT)
    bad(too_long, "frame_length 7", tmp_path / "g")
    zero_step = single("STFT", 17, stft, {"s": np.int64(0), "l": np.int64(4)}, ["signal", "s", "", "l"], FLOAT)
    bad(zero_step, "frame_step must be positive", tmp_path / "h")
    window = {"signal": xr, "w": np.ones(5, np.float32)}
    mismatch = single("STFT", 17, window, {"s": np.int64(1), "l": np.int64(4)}, ["signal", "s", "w", "l"], FLOAT)
    bad(mismatch, "does not match frame_length", tmp_path / "i")
    consts = dict(zip(MEL_INPUTS, [np.int64(8), np.int64(16), np.int64(8000), np.float32(0), np.float32(6000)]))
    bad(single("MelWeightMatrix", 17, {}, consts, MEL_INPUTS, FLOAT), "outside the 9 spectrogram bins", tmp_path / "j")


def all_ops_model() -> onnx.ModelProto:
    """Every kernel variant once, for the strict compile checks: real/complex in, hermitian, window, mel."""
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("DFT", ["x", "", "ax"], ["fwd"]),
        helper.make_node("DFT", ["xc", "n", "ax"], ["inv"], inverse=1),
        helper.make_node("DFT", ["xc", "", "ax"], ["irfft"], inverse=1, onesided=1),
        helper.make_node("DFT", ["xd", "", "ax0"], ["rfft"], onesided=1),
        helper.make_node("STFT", ["sig", "step", "win"], ["spec"]),
        helper.make_node("STFT", ["sigc", "step", "", "len"], ["specc"], onesided=0),
        helper.make_node("MelWeightMatrix", ["bins", "n", "rate", "lo", "hi"], ["mel"]),
    ]
    outs = ["fwd", "inv", "irfft", "rfft", "spec", "specc", "mel"]
    graph = helper.make_graph(
        nodes,
        "signal",
        [
            helper.make_tensor_value_info("x", FLOAT, [2, 8, 3, 1]),
            helper.make_tensor_value_info("xc", FLOAT, [2, 6, 3, 2]),
            helper.make_tensor_value_info("xd", DOUBLE, [7, 2, 1]),
            helper.make_tensor_value_info("sig", FLOAT, [2, 40, 1]),
            helper.make_tensor_value_info("win", FLOAT, [8]),
            helper.make_tensor_value_info("sigc", FLOAT, [1, 30, 2]),
            helper.make_tensor_value_info("rate", INT64, []),
            helper.make_tensor_value_info("lo", FLOAT, []),
            helper.make_tensor_value_info("hi", FLOAT, []),
        ],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
        [
            i64("ax", -3),
            i64("ax0", 0),
            i64("n", 16),
            i64("step", 4),
            i64("len", 10),
            i64("bins", 12),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_generated_c_compiles_without_warnings(tmp_path):
    source = build_c_strictly(all_ops_model(), tmp_path)
    assert "_dft(" in source and "_stft(" in source and "_melweightmatrix(" in source


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, ptxas = compile_cuda_strictly(all_ops_model(), tmp_path)
    assert "cudaGraphLaunch" in source and "static __global__ void" in source
    for kernel in ("dft", "stft", "melweightmatrix"):
        assert f"_{kernel}" in ptxas, f"ptxas compiled no {kernel} kernel"
