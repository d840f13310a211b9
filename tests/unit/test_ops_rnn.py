"""RNN, GRU and LSTM against onnxruntime: directions, layouts, sequence lengths, initial states, peepholes,
clip, linear_before_reset, activations with parameters; the numpy reference (constant folding) too; and the
CUDA kernel through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import NEEDS_NVCC, assert_close, compile_cuda_strictly, run_mlcc, run_ort

S, B, I, H = 5, 3, 4, 6  # noqa: E741
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def layer(op: str, dirs: int = 1, layout: int = 0, lens: bool = False, states: bool = False, peep: bool = False,
          fold: bool = False, **attrs) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:  # fmt: skip
    rng = np.random.default_rng(len(op) + dirs * 7 + lens + 2 * states + 4 * peep)
    g = GATES[op]
    x = rng.standard_normal((S, B, I)).astype(np.float32)
    x = x.transpose(1, 0, 2).copy() if layout else x
    w = {
        "W": rng.standard_normal((dirs, g * H, I)).astype(np.float32) * 0.5,
        "R": rng.standard_normal((dirs, g * H, H)).astype(np.float32) * 0.5,
        "B": rng.standard_normal((dirs, 2 * g * H)).astype(np.float32) * 0.2,
    }
    names = ["X", "W", "R", "B", "", ""]
    if lens:
        w["L"] = np.array([5, 2, 3], np.int32)
        names[4] = "L"
    if states:
        w["H0"] = rng.standard_normal((dirs, B, H)).astype(np.float32)
        names[5] = "H0"
        if op == "LSTM":
            w["C0"] = rng.standard_normal((dirs, B, H)).astype(np.float32)
            names.append("C0")
        if layout:
            w.update({k: w[k].transpose(1, 0, 2).copy() for k in ("H0", "C0") if k in w})
    if peep:
        names += [""] * (7 - len(names)) + ["P"]
        w["P"] = rng.standard_normal((dirs, 3 * H)).astype(np.float32)
    while names and not names[-1]:
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    direction = "bidirectional" if dirs == 2 else attrs.pop("direction", "forward")
    node = helper.make_node(op, names, outs, hidden_size=H, direction=direction, layout=layout, **attrs)
    feeds = {} if fold else {"X": x}
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()] + ([numpy_helper.from_array(x, "X")] if fold else [])
    graph = helper.make_graph(
        [node],
        op.lower(),
        [] if fold else [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), feeds


CASES = {
    "rnn_relu_reverse_lens": dict(op="RNN", lens=True, activations=["Relu"], direction="reverse"),
    "rnn_leakyrelu_batchwise": dict(op="RNN", layout=1, states=True, activations=["LeakyRelu"], activation_alpha=[0.2]),  # noqa: E501
    "gru_bidirectional_lens_states": dict(op="GRU", dirs=2, lens=True, states=True),
    "gru_linear_before_reset_clip": dict(op="GRU", linear_before_reset=1, clip=0.7, states=True),
    "gru_batchwise_hardsigmoid": dict(
        op="GRU", layout=1, activations=["HardSigmoid", "Tanh"], activation_alpha=[0.3], activation_beta=[0.4]
    ),  # noqa: E501
    "lstm_bidirectional_peepholes_lens": dict(op="LSTM", dirs=2, lens=True, states=True, peep=True),
    "lstm_batchwise_clip": dict(op="LSTM", layout=1, clip=0.5, states=True),
    "lstm_input_forget": dict(op="LSTM", input_forget=1, peep=True),
    "lstm_folded_at_compile_time": dict(op="LSTM", dirs=2, lens=True, peep=True, fold=True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_recurrent_layer_matches_onnxruntime(name, tmp_path):
    case = CASES[name]
    model, feeds = layer(**case)
    got = run_mlcc(model, feeds, tmp_path / "out")
    if not case.get("layout"):
        assert_close(got, run_ort(model, feeds), rtol=1e-4, atol=1e-5)
        return
    # onnxruntime has no batch-major (layout=1) GRU/LSTM: compare with the same layer in layout 0.
    model0, _ = layer(**{**case, "layout": 0})
    want = run_ort(model0, {"X": feeds["X"].transpose(1, 0, 2)})
    want = [want[0].transpose(2, 0, 1, 3)] + [w.transpose(1, 0, 2) for w in want[1:]]
    assert_close(got, want, rtol=1e-4, atol=1e-5)


@NEEDS_NVCC
def test_recurrent_cuda_kernels_compile(tmp_path):
    nodes, inits = [], []
    for i, case in enumerate(
        ("gru_linear_before_reset_clip", "lstm_bidirectional_peepholes_lens", "rnn_relu_reverse_lens")
    ):  # noqa: E501
        model, _ = layer(**CASES[case])
        for n in model.graph.node:
            n.input[:] = [f"{v}{i}" if v and v != "X" else v for v in n.input]
            n.output[:] = [f"{v}{i}" for v in n.output]
            nodes.append(n)
        for t in model.graph.initializer:
            t.name = f"{t.name}{i}"
            inits.append(t)
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for n in nodes for o in n.output]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, (S, B, I))
    model = helper.make_model(
        helper.make_graph(nodes, "rnns", [x], outs, inits), opset_imports=[helper.make_opsetid("", 14)]
    )  # noqa: E501
    compile_cuda_strictly(model, tmp_path)
