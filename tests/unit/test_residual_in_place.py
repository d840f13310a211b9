"""A convolution whose fused epilogue adds a residual (Relu(Conv(x) + r), ResNet's blocks) is stored over
the residual where r dies there: the memory planner puts Y at r's offset (passes/memory_plan.py
inplace_input) and the host adds its result onto it (ops/fused.py _residual, the templates' `in_place`), so r
is never read as a separate stream. Each kind of convolution kernel is checked against onnxruntime, in place
and not, on every --cpu the machine can run, with 1 and 3 threads."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlcc.pipeline
from helpers import HOST_BITS, HOST_CPUS, assert_close, compile_and_load, run_ort
from mlcc.codegen.program import build_program
from mlcc.context import PassContext
from mlcc.cpu import cpu_target
from mlcc.importer.onnx import import_onnx
from mlcc.passes import pack_weights as layout

CPUS = HOST_CPUS

# name: (x shape, w shape of the conv that takes the residual, its attrs); the residual comes from a 1x1
# conv of x with as many channels, so it lives in the arena and dies at the add
CASES = {
    "packed_1x1": ((1, 24, 14, 15), (40, 24, 1, 1), {}),  # channel-major, X's rows packed
    "packed_k_blocks": ((1, 420, 5, 6), (16, 420, 1, 1), {}),  # depth 420: two K blocks, both accumulate
    "direct_3x3": ((1, 6, 13, 11), (14, 6, 3, 3), {"pads": [1, 1, 1, 1]}),  # channel-major, read in place
    "pixel_direct_3x3": ((2, 32, 9, 10), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}),  # AVX-512: pixel-major, batch 2
    "pixel_direct_s2": ((1, 32, 15, 17), (56, 32, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "pixel_1d": ((1, 24, 51), (64, 24, 3), {"pads": [1, 1]}),  # 1-D, 51 pixels: pixel-major, packed panels
    # AVX-512: 25 pixels in tiles of 7 rows (the last of 4), whose runs are added in place with masks
    "pixel_direct_7_rows": ((1, 32, 5, 5), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}),
    # AVX-512: 169 pixels, 21 tiles of 8 and the last pixel on a tile of one row (cpu.py pixel_tail), 2 images
    "pixel_direct_tail": ((2, 32, 13, 13), (64, 32, 3, 3), {"pads": [1, 1, 1, 1]}),
}


@pytest.fixture(autouse=True)
def small_pixel_major(monkeypatch):
    """Let the pixel-major kernel take small convolutions on every target (by default only wide, deep ones)."""
    monkeypatch.setattr(layout, "P_MAJOR_CHANNELS", 1)
    monkeypatch.setattr(layout, "P_MAJOR_DEPTH", 1)


def _model(
    x_shape, w_shape, attrs, residual: str = "computed", relu: bool = True, silu: bool = False
) -> onnx.ModelProto:
    """y = Softmax(Relu(Conv(x) + r)) (SiLU for Relu with `silu`), or Conv(x) + r without `relu`; r =
    Softmax(Conv1x1(x)) of the output's shape ("computed"), or x itself ("input"), or a computed r that a
    later node reads again ("reused")."""
    rng = np.random.default_rng(sum(w_shape))
    m = w_shape[0]
    inits = [
        numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32) * 0.3, "w"),
        numpy_helper.from_array(rng.standard_normal(m).astype(np.float32), "b"),
    ]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs)]
    if residual == "input":
        r = "x"
    else:
        # r: a 1x1 conv of x to m channels with the conv's strides (same output size when unpadded)
        side = (m, x_shape[1]) + (1,) * (len(x_shape) - 2)
        inits.append(numpy_helper.from_array(rng.standard_normal(side).astype(np.float32) * 0.3, "wr"))
        pads = attrs.get("pads")
        r_attrs = {"strides": attrs["strides"]} if "strides" in attrs else {}
        if pads:  # same size as a padded 3x3: pad the 1x1 by 0 and take the stride
            r_attrs["pads"] = [0] * len(pads)
        nodes.append(helper.make_node("Conv", ["x", "wr"], ["r0"], **r_attrs))
        nodes.append(helper.make_node("Softmax", ["r0"], ["r"], axis=1))  # not a chain the add could join
        r = "r"
    nodes.append(helper.make_node("Add", ["c", r], ["s"] if relu else ["y"]))
    if relu and silu:  # x * sigmoid(x): a heavy epilogue, run after the tiles (ops/fused.py _CALL)
        nodes.append(helper.make_node("Sigmoid", ["s"], ["sg"]))
        nodes.append(helper.make_node("Mul", ["s", "sg"], ["t"]))
    elif relu:  # and a Softmax reads the result: the conv's output is in the arena, not a graph output
        nodes.append(helper.make_node("Relu", ["s"], ["t"]))
    if relu:
        nodes.append(helper.make_node("Softmax", ["t"], ["y"], axis=1))
    outputs = ["y"]
    if residual == "reused":
        nodes.append(helper.make_node("Neg", ["r"], ["z"]))
        outputs.append("z")
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _in_place(model: onnx.ModelProto, cpu: str) -> tuple[str, bool]:
    """The family of the kernel that adds the residual, and whether the planner stored Y over it."""
    ctx = PassContext(opt_level=2, cpu=cpu_target(cpu))
    program = build_program(mlcc.pipeline.run_pipeline(import_onnx(model), "c", ctx), views=True)
    for step in program.steps:
        epilogue = step.kernel.params.get("epilogue") or {}
        if epilogue.get("residual") is not None:
            k = step.kernel
            e = k.inputs[len(k.inputs) - len(epilogue["loads"]) + epilogue["residual"]]
            offsets = program.memory.offsets
            same = id(e) in offsets and offsets.get(id(e)) == offsets.get(id(k.outputs[0]))
            return k.family, same
    return "", False


def _input_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)


@pytest.mark.parametrize(("cpu", "threads"), [(cpu, t) for cpu in CPUS for t in (1, 3)])
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_dying_residual_is_added_in_place(name, cpu, threads, tmp_path, monkeypatch):
    x_shape, w_shape, attrs = CASES[name]
    model = _model(x_shape, w_shape, attrs)
    family, same = _in_place(model, cpu)
    assert family in ("conv_packed", "conv_direct", "conv_pmajor") and same
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    x = np.random.default_rng(3).standard_normal(x_shape).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "const int in_place" in source
        if name == "pixel_direct_7_rows" and cpu == "x86-64-v4":
            assert "mlcc_ukr_gather7(288, xg" in source and "MLCC_STORE_RUN(c + " in source
        if name == "pixel_direct_tail" and cpu == "x86-64-v4":
            assert "if (mr < 8) mlcc_ukr_gather1(288, xg" in source
        got = compiled.run({"x": x})["y"]
    assert_close([got], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)


def test_the_kernels_are_the_ones_named():
    if HOST_BITS < 512:
        pytest.skip("the pixel-major choices are AVX-512's")
    kinds = {name: _in_place(_model(*CASES[name]), "x86-64-v4")[0] for name in CASES}
    assert kinds["packed_1x1"] == kinds["packed_k_blocks"] == "conv_packed"
    assert kinds["direct_3x3"] == "conv_direct"
    assert kinds["pixel_direct_3x3"] == kinds["pixel_direct_s2"] == kinds["pixel_1d"] == "conv_pmajor"
    assert kinds["pixel_direct_7_rows"] == kinds["pixel_direct_tail"] == "conv_pmajor"


@pytest.mark.parametrize("residual", ["input", "reused"])
@pytest.mark.parametrize("name", ["packed_1x1", "direct_3x3", "pixel_direct_3x3"])
def test_a_residual_that_lives_on_is_read_not_overwritten(name, residual, tmp_path, monkeypatch):
    """x as the residual (the conv reads it, and a graph input is not in the arena) and a residual that a
    later node reads: Y gets its own buffer, and the epilogue reads the residual."""
    x_shape, w_shape, attrs = CASES[name]
    if residual == "input":
        w_shape = (x_shape[1],) + w_shape[1:]  # y = Relu(Conv(x) + x): as many channels as x
    model = _model(x_shape, w_shape, attrs, residual=residual)
    cpu = CPUS[-1]
    assert not _in_place(model, cpu)[1]
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    x = np.random.default_rng(4).standard_normal(_input_shape(model)).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        got = compiled.run({"x": x})
        names = [t.name for t in compiled.outputs]
    assert_close([got[n] for n in names], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)


def test_a_residual_also_read_through_a_view_is_not_overwritten(tmp_path, monkeypatch):
    """Relu(Conv(x) + r + Reshape(r)): the reshape is a view, the same bytes as r under another name, read in
    the same epilogue; storing Y over r would let it read the convolution's sum instead of r."""
    x_shape, w_shape, attrs = CASES["packed_1x1"]
    model = _model(x_shape, w_shape, attrs)
    graph = model.graph
    m, h, w = 40, 14, 15
    graph.initializer.append(numpy_helper.from_array(np.array([m, h, w], np.int64), "shape3"))
    add = next(n for n in graph.node if n.op_type == "Add")
    add.output[0] = "s0"
    at = list(graph.node).index(add)
    graph.node.insert(at + 1, helper.make_node("Reshape", ["r", "shape3"], ["rv"]))
    graph.node.insert(at + 2, helper.make_node("Add", ["s0", "rv"], ["s"]))
    cpu = CPUS[-1]
    family, same = _in_place(model, cpu)
    assert family and not same  # the residual is marked, but the planner keeps Y apart
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    x = np.random.default_rng(7).standard_normal(x_shape).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        got = compiled.run({"x": x})["y"]
    assert_close([got], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)


def test_without_a_relu_the_sum_is_the_output(tmp_path, monkeypatch):
    """Conv + r as the last node: the add is the whole epilogue, and the graph output cannot sit over r."""
    x_shape, w_shape, attrs = CASES["packed_1x1"]
    model = _model(x_shape, w_shape, attrs, relu=False)
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    x = np.random.default_rng(5).standard_normal(x_shape).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=CPUS[-1]) as compiled:
        got = compiled.run({"x": x})["y"]
    assert_close([got], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("name", ["packed_1x1", "packed_k_blocks", "direct_3x3", "pixel_direct_3x3"])
def test_a_heavy_epilogue_runs_after_the_tiles_in_place_or_not(name, threads, tmp_path, monkeypatch):
    """SiLU(Conv(x) + r): the tiles (with the bias, added onto the residual in place) first, then the epilogue
    over the task's whole block (the in-place pixel-major kernel: over its last 8 tiles), which reads the sum
    back; in place (r dies) and not (r read again). (The pixel-major kernel that packs patch panels, which
    small_pixel_major gives the deep convolution too, keeps it per tile.)"""
    x_shape, w_shape, attrs = CASES[name]
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    cpu = CPUS[-1]
    for residual in ("computed", "reused"):
        model = _model(x_shape, w_shape, attrs, residual=residual, silu=True)
        family, same = _in_place(model, cpu)
        assert same == (residual == "computed")
        x = np.random.default_rng(8).standard_normal(x_shape).astype(np.float32)
        out = tmp_path / residual
        with compile_and_load(model, out, cpu=cpu) as compiled:
            source = (out / "model.c").read_text()
            assert "mlcc_logistic_denf" in source
            # the epilogue's pass of its own: over the task's block, or a pixel-major kernel's last 8 tiles
            # where it reads its input in place; per tile where it packs patch panels
            packs_panels = family == "conv_pmajor" and "PIX + p0" not in source
            assert ("overlap" in source) == (not packs_panels)
            got = compiled.run({"x": x})
            names = [t.name for t in compiled.outputs]
        assert_close([got[n] for n in names], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-5)
