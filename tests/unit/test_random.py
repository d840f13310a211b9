"""Random ops (compiler/ops/random.py, runtime_c/mlcc_random.h): the distributions, fresh numbers each run,
the same sequence in every instance for a seed, never folded or merged, and a clear error on cuda."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import mlcc
from helpers import compile_and_load

N = (400, 250)  # 100k draws: a sample mean within 5 standard errors of the true one


def model(nodes, inputs=(), outputs=("y",), out_type=TensorProto.FLOAT, opset=22):
    graph = helper.make_graph(
        nodes,
        "random",
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, out_type, None) for n in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def close(sample: np.ndarray, mean: float, std: float) -> None:
    x = sample.astype(np.float64)
    assert abs(x.mean() - mean) < 5 * std / np.sqrt(x.size), (x.mean(), mean)
    assert abs(x.std() - std) < 0.02 * std, (x.std(), std)


@pytest.mark.parametrize("out_type", [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16])
def test_uniform_and_normal_distributions(out_type, tmp_path):
    nodes = [
        helper.make_node("RandomUniform", [], ["y"], shape=list(N), low=-1.0, high=3.0, dtype=out_type, seed=2.0),
        helper.make_node("RandomNormal", [], ["z"], shape=list(N), mean=5.0, scale=0.5, dtype=out_type),
    ]
    with compile_and_load(model(nodes, outputs=("y", "z"), out_type=out_type), tmp_path) as m:
        out = m.run({})
    y, z = out["y"].astype(np.float64), out["z"]
    assert -1.0 <= y.min() and y.max() <= 3.0 and len(np.unique(y)) > 1000
    close(y, 1.0, 4 / np.sqrt(12))
    close(z, 5.0, 0.5)
    assert abs(np.mean(((z.astype(np.float64) - 5) / 0.5) ** 4) - 3) < 0.1  # normal kurtosis, not uniform's 1.8


def test_like_ops_take_shape_and_type_of_their_input_and_bernoulli_draws_ones_with_probability_p(tmp_path):
    nodes = [
        helper.make_node("RandomUniformLike", ["x"], ["u"]),
        helper.make_node("RandomNormalLike", ["x"], ["n"], dtype=TensorProto.FLOAT),
        helper.make_node("Bernoulli", ["p"], ["b"], seed=3.0),
    ]
    inputs = [("x", TensorProto.DOUBLE, N), ("p", TensorProto.FLOAT, N)]
    m = model(nodes, inputs, outputs=("u", "n", "b"))
    p = np.tile(np.array([0.0, 0.3, 1.0, 0.9, 0.5], np.float32), N[0] * N[1] // 5).reshape(N)
    with compile_and_load(m, tmp_path) as c:
        out = c.run({"x": np.zeros(N), "p": p})
    assert out["u"].dtype == np.float64 and out["u"].shape == N and out["n"].dtype == np.float32
    close(out["n"], 0.0, 1.0)
    b = out["b"]
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert not b[p == 0.0].any() and b[p == 1.0].all()
    for q in (0.3, 0.9, 0.5):
        sample = b[p == q]
        assert abs(sample.mean() - q) < 5 * np.sqrt(q * (1 - q) / sample.size), (q, sample.mean())


def test_each_run_draws_afresh_and_every_instance_repeats_the_sequence(tmp_path):
    nodes = [
        helper.make_node("RandomNormal", [], ["y"], shape=[1000], seed=7.0),
        helper.make_node("RandomNormal", [], ["z"], shape=[1000], seed=7.0),  # the same node twice: not merged
        helper.make_node("RandomNormal", [], ["w"], shape=[1000], seed=8.0),
    ]
    m = model(nodes, outputs=("y", "z", "w"))
    report = mlcc.compile(m, out_dir=tmp_path / "out", build=False)
    assert report["kernels"] == 3  # not folded into constants, not merged
    with compile_and_load(m, tmp_path / "a") as a, compile_and_load(m, tmp_path / "b") as b:
        first, second = a.run({}), a.run({})
        again, again2 = b.run({}), b.run({})
    assert not np.array_equal(first["y"], second["y"])  # fresh numbers each run
    assert np.array_equal(first["y"], again["y"]) and np.array_equal(second["y"], again2["y"])  # per instance
    assert np.array_equal(first["y"], first["z"])  # a seed names a sequence
    assert abs(np.corrcoef(first["y"], first["w"])[0, 1]) < 0.15  # another seed, another sequence


@pytest.mark.parametrize("mode", ["constant", "runtime"])
def test_training_dropout_zeroes_a_ratio_and_scales_the_rest(mode, tmp_path):
    inits = [helper.make_tensor("ratio", TensorProto.FLOAT, [], [0.3])]
    inputs = [("x", TensorProto.FLOAT, N)]
    if mode == "constant":
        inits.append(helper.make_tensor("t", TensorProto.BOOL, [], [True]))
    else:
        inputs.append(("t", TensorProto.BOOL, ()))
    graph = helper.make_graph(
        [helper.make_node("Dropout", ["x", "ratio", "t"], ["y", "m"], seed=4.0)],
        "dropout",
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("m", TensorProto.BOOL, None),
        ],
        inits,
    )
    x = np.random.default_rng(0).uniform(1, 2, N).astype(np.float32)
    feeds = {"x": x} if mode == "constant" else {"x": x, "t": np.array(True)}
    with compile_and_load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path) as c:
        first, second = c.run(feeds), c.run(feeds)
        off = c.run({"x": x, "t": np.array(False)}) if mode == "runtime" else None
    y, m = first["y"], first["m"]
    assert abs((~m).mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / m.size)
    assert np.array_equal(y == 0, ~m) and np.allclose(y[m], x[m] / np.float32(0.7), rtol=1e-6)
    assert not np.array_equal(first["m"], second["m"])
    if off is not None:  # training_mode false at run time: the identity and an all-true mask
        assert np.array_equal(off["y"], x) and off["m"].all()


def test_the_cuda_target_says_it_has_no_random_kernel(tmp_path):
    m = model([helper.make_node("RandomUniform", [], ["y"], shape=[4])])
    with pytest.raises(mlcc.MlccError, match="the cuda target has no random kernel yet"):
        mlcc.compile(m, target="cuda", out_dir=tmp_path, build=False)
