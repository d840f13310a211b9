"""The layout pass (passes/pack_weights.py) and the GEMM engine it feeds (ops/packed.py,
templates/c/gemm_engine.j2): packing round trips, what gets packed and what not, and packed Conv and GEMM
against onnxruntime on every --cpu the machine can run, with 1 and 3 threads, on shapes that leave partial
register tiles, several K blocks and several column blocks."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import HOST_CPUS, assert_close, build_c_strictly, compile_and_load, run_ort
from mlcc.cpu import cpu_target
from mlcc.importer.onnx import import_onnx
from mlcc.ops.packed import (
    p_major_gain,
    pack_conv_weights,
    pack_conv_weights_p_major,
    pack_gemm_weights,
    unpack_conv_weights,
    unpack_conv_weights_p_major,
    unpack_gemm_weights,
)
from mlcc.ops.registry import lookup
from mlcc.passes import pack_weights as layout
from mlcc.passes.pack_weights import pack_weights

CPUS = HOST_CPUS
KC_MAX = 384  # deeper than any target's KC: at least two K blocks
RUNS = [("generic", 1), ("generic", 3)] + [(cpu, 2) for cpu in CPUS[1:]]  # (--cpu, MLCC_NUM_THREADS)


@pytest.mark.parametrize("kc", [4, 7, 100])
@pytest.mark.parametrize("group", [1, 2, 5])
def test_conv_weight_packing_round_trips_and_pads_panels_with_zeros(group, kc):
    w = np.random.default_rng(group).standard_normal((10, 3, 3, 3)).astype(np.float32)
    packed = pack_conv_weights(w, group, 6, kc) if 10 % group == 0 and group <= 2 else None
    if packed is None:
        w = np.random.default_rng(1).standard_normal((10, 2, 3)).astype(np.float32)
        packed = pack_conv_weights(w, group, 6, kc)
    mg, k = 10 // group, int(np.prod(w.shape[1:]))
    assert packed.shape == (group, -(-mg // 6) * 6, k)
    np.testing.assert_array_equal(unpack_conv_weights(packed, w.shape, 6, kc), w)
    first = packed.reshape(group, -1)[:, : -(-mg // 6) * 6 * min(kc, k)]  # the first K block, panel by panel
    tail = first.reshape(group, -(-mg // 6), min(kc, k), 6)[:, -1, :, mg - 6 * (-(-mg // 6) - 1) :]
    assert not tail.any()  # rows past M/group are zero


def test_gemm_weight_packing_round_trips_and_pads_strips_with_zeros():
    b = np.random.default_rng(0).standard_normal((7, 37)).astype(np.float32)
    packed = pack_gemm_weights(b, 16)
    assert packed.shape == (3, 7, 16)
    np.testing.assert_array_equal(unpack_gemm_weights(packed, 37), b)
    assert not packed[2, :, 5:].any()


def test_pixel_major_weight_packing_round_trips():
    w = np.random.default_rng(1).standard_normal((10, 3, 2, 3)).astype(np.float32)
    packed = pack_conv_weights_p_major(w, 2, 4)  # per group W^T [18, 5] in strips of 4 channels
    assert packed.shape == (2, 2, 18 * 4)
    np.testing.assert_array_equal(unpack_conv_weights_p_major(packed, w.shape), w)
    assert not packed[:, 1].reshape(2, 18, 4)[:, :, 1:].any()  # channel 5 of 5 pads its strip with zeros


def conv_model(x_shape, w_shape, bias=True, residual=None, **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(sum(w_shape))
    inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(w_shape[0]).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("Conv", inputs, ["y" if residual is None else "c"], **attrs)]
    if residual is not None:  # an epilogue with an operand read per element: Relu(conv + r)
        nodes += [helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    if residual is not None:
        graph_inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, residual))
    graph = helper.make_graph(
        nodes, "conv", graph_inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


CONVS = {
    # name: (x shape, w shape, attrs); partial tiles (M % 6, P % NR), K > KC, many column blocks
    "3x3_pad": ((1, 5, 17, 19), (13, 5, 3, 3), {"pads": [1, 1, 1, 1]}),
    "pointwise": ((2, 40, 9, 9), (11, 40, 1, 1), {}),
    "pointwise_deep": ((1, KC_MAX + 37, 7, 5), (7, KC_MAX + 37, 1, 1), {}),
    # rows 4 KiB apart: all in one L1 set, read in place all the same (ops/packed.py b_in_place)
    "pointwise_rows_in_one_set": ((1, 24, 32, 32), (16, 24, 1, 1), {}),
    "deep_k_blocks": ((1, 33, 8, 8), (32, 33, 3, 3), {"pads": [1, 1, 1, 1]}),
    "stride2_dilated": ((1, 4, 23, 21), (8, 4, 3, 3), {"strides": [2, 2], "dilations": [2, 1], "pads": [2, 1, 0, 1]}),
    "grouped": ((1, 12, 10, 10), (9, 4, 3, 3), {"group": 3, "pads": [1, 1, 1, 1]}),
    "wide_output": ((1, 3, 40, 41), (16, 3, 5, 5), {"pads": [2, 2, 2, 2]}),
    "conv1d": ((2, 6, 50), (10, 6, 5), {"strides": [3]}),
    "conv3d": ((1, 3, 5, 6, 7), (4, 3, 2, 3, 3), {"pads": [1, 0, 1, 0, 1, 1]}),
    "same_upper": ((1, 3, 9, 9), (5, 3, 4, 4), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    # stride 1, 2-D: the direct kernel (PadPlanes + in-place reads), incl. dilations and asymmetric pads
    "direct_dilated_asym": ((2, 6, 15, 17), (10, 6, 3, 3), {"dilations": [2, 3], "pads": [2, 0, 1, 3]}),
    "direct_unpadded_5x5": ((1, 7, 12, 30), (9, 7, 5, 5), {}),
    "direct_same_lower": ((1, 4, 10, 11), (6, 4, 2, 3), {"auto_pad": "SAME_LOWER"}),
    # weights larger than L2: strips in groups per pass over them (conv_direct.c.j2), the last group partial
    "direct_strip_groups": ((1, 256, 14, 14), (256, 256, 3, 3), {"pads": [1, 1, 1, 1]}),
    # 7x7 maps: pixel-major tiles (ops/packed.py p_major_gain) where the CPU's tile shape favours them
    "p_major_1x1": ((1, 40, 7, 7), (64, 40, 1, 1), {}),
    "p_major_3x3_s2_deep": ((1, KC_MAX + 9, 13, 13), (64, KC_MAX + 9, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "p_major_grouped": ((2, 32, 13, 13), (64, 16, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1], "group": 2}),
    # pixel-major read in place (AVX-512) with strides, dilations and asymmetric pads: windows from every corner
    "pixel_direct_strided": (
        (2, 16, 20, 23),  # batch 2
        (56, 16, 3, 3),
        {"strides": [2, 1], "dilations": [1, 2], "pads": [2, 0, 1, 3]},
    ),
    # 13x13 (169 pixels = 21 tiles of 8 and one of 1: its own one-row micro-kernel on AVX-512), 2 images;
    # 3x3 windows (channel-blocked) and a 1x1
    "tail_blocked": ((2, 24, 13, 13), (40, 24, 3, 3), {"pads": [1, 1, 1, 1]}),
    "tail_1x1": ((2, 136, 13, 13), (64, 136, 1, 1), {}),
    # a 1x1 of depth 128+ (AVX-512: pixel-major in place), 56 outputs (a partial strip), 54 pixels, 2 images
    "pixel_direct_1x1": ((2, 136, 6, 9), (56, 136, 1, 1), {}),
    # 49 pixels of a 1-D map: pixel-major with the patch panels packed (no in-place reads off 2-D maps)
    "p_major_conv1d": ((1, 24, 51), (64, 24, 3), {}),
    # 2-D windows whose channels fill their blocks: channel-blocked input without AVX-512 (PadBlocks,
    # _blocked_conv): 60 channels (the last block 4 real, 4 zeros), 13 outputs (a partial strip), 143 pixels
    "blocked_partial_block": ((1, 60, 13, 11), (13, 60, 3, 3), {"pads": [1, 1, 1, 1]}),
    # three blocks, 5x5 windows at stride 2 without padding on the right, 2 images
    "blocked_5x5_stride2": ((2, 24, 17, 16), (40, 24, 5, 5), {"strides": [2, 2], "pads": [2, 2, 1, 0]}),
    # a stem (3 channels, 7x7 at stride 2, depth 147): pixel-major in place on AVX2, im2col on SSE2
    "stem_7x7_s2": ((1, 3, 30, 31), (16, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    # SAME_UPPER with an even window at stride 2: more padding after than before
    "blocked_same_upper": ((1, 8, 9, 10), (8, 8, 4, 4), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    # strided, few outputs (PHASE_MAX_CHANNELS): the direct kernel over the input's phases (PadPhases), odd and
    # even sizes, asymmetric pads, 2 images, two groups, stride 3, a depth past KC (K blocks)
    "phases_stem": ((2, 3, 33, 36), (16, 3, 3, 3), {"strides": [2, 2], "pads": [1, 0, 2, 1]}),
    "phases_grouped_s3": ((1, 4, 29, 31), (8, 2, 5, 4), {"strides": [3, 3], "pads": [2, 1, 0, 2], "group": 2}),
    "phases_k_blocks": ((1, 5, 24, 25), (12, 5, 9, 9), {"strides": [2, 2], "pads": [4, 4, 4, 4]}),
}
# cases for the channel-major direct kernel: the blocked one would take them (BLOCKED_MAX_WASTE), and on AVX2
# the pixel-major one (P_AVX2_DEPTH)
NOT_BLOCKED = {"deep_k_blocks", "direct_strip_groups"}
# the kernel each kind of PackedConv runs, as its call in the generated source
ENGINE_CALLS = {
    "packed": "(kc, ap, 0, bp",  # im2col strips (conv_packed.c.j2; mlcc_ukr_packed, with a bias _clamp)
    "direct": "mlcc_ukr_direct(kc",  # the padded input read in place (conv_direct.c.j2)
    "pixel-packed": "mlcc_ukr_packed(kc, ap + (q - q_lo)",  # pixel-major patch panels (conv_pmajor.c.j2)
    "pixel-direct": ", xg, 0, bs, OFF, PIX + p0,",  # pixel-major, read in place, stored transposed (conv_pmajor.c.j2)
    "blocked": ", xg, 0, bs, OFF, PIX + p0,",  # the same, from a channel-blocked copy of the input
}


def conv_kind(model: onnx.ModelProto, cpu: str) -> tuple[str, list[str]]:
    """Which PackedConv kind the layout pass makes for `cpu`, and the ops it leaves."""
    graph = pack_weights(import_onnx(model, {}), cpu_target(cpu))
    conv = next(n for n in graph.nodes if n.op == "PackedConv")
    kind = ("pixel-" if conv.attrs.get("p_major") else "") + ("direct" if conv.attrs.get("direct") else "packed")
    return "blocked" if conv.attrs.get("blocked") else kind, [n.op for n in graph.nodes]


def packed_ops(model: onnx.ModelProto) -> list[str]:
    graph = pack_weights(import_onnx(model, {}))
    return [n.op for n in graph.nodes]


def test_the_pass_packs_conv_and_gemm_weights_and_leaves_depthwise_and_transposed_a_alone():
    assert packed_ops(conv_model((1, 5, 16, 16), (13, 5, 3, 3))) == ["PadPlanes", "PackedConv"]  # direct
    assert packed_ops(conv_model((1, 5, 8, 8), (40, 5, 3, 3), strides=[2, 2])) == ["PackedConv"]  # im2col
    assert packed_ops(conv_model((1, 5, 8, 8), (13, 5, 3, 3), strides=[2, 2])) == ["PadPhases", "PackedConv"]
    assert packed_ops(conv_model((1, 6, 8, 8), (6, 1, 3, 3), group=6)) == ["DepthwiseConv"]
    assert packed_ops(conv_model((1, 6, 8, 8), (12, 1, 3, 3), group=6)) == ["DepthwiseConv"]  # multiplier 2
    assert packed_ops(conv_model((1, 6, 30), (6, 1, 3), group=6)) == ["Conv"]  # 1-D depthwise: direct kernel
    assert packed_ops(conv_model((1, 6, 20, 20), (6, 1, 9, 9), group=6)) == ["Conv"]  # 81 taps: direct kernel
    assert packed_ops(gemm_model((4, 6), (6, 5))) == ["PackedMatMul"]
    assert packed_ops(gemm_model((6, 4), (6, 5), transA=1)) == ["Gemm"]
    assert packed_ops(matmul_model((2, 3, 6), (6, 5))) == ["PackedMatMul"]


@pytest.mark.parametrize(("cpu", "threads"), RUNS)
@pytest.mark.parametrize("name", sorted(CONVS))
def test_packed_conv_matches_onnxruntime(name, cpu, threads, tmp_path, monkeypatch):
    x_shape, w_shape, attrs = CONVS[name]
    small_pixel_major(monkeypatch)
    if name in NOT_BLOCKED:
        monkeypatch.setattr(layout, "BLOCKED_MAX_WASTE", -1)
        monkeypatch.setattr(layout, "P_AVX2_DEPTH", 10**9)
    model = conv_model(x_shape, w_shape, **attrs)
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    x = np.random.default_rng(5).standard_normal(x_shape).astype(np.float32)
    kind, ops = conv_kind(model, cpu)
    padded = kind == "direct" or (kind == "pixel-direct" and (any(attrs.get("pads", [0])) or "auto_pad" in attrs))
    if kind == "blocked":  # padded or not, a blocked copy
        assert ops == ["PadBlocks", "PackedConv"]
    elif kind == "direct" and max(attrs.get("strides", [1])) > 1:  # strided: over the input's phases
        assert ops == ["PadPhases", "PackedConv"]
    else:
        assert ops == (["PadPlanes", "PackedConv"] if padded else ["PackedConv"])  # the direct kernel: slack rows
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert ENGINE_CALLS[kind] in source  # the engine ran
        if name.startswith("tail_") and kind in ("pixel-direct", "blocked"):  # the last pixel: a one-row tile
            assert ("mlcc_ukr_gather1(" in source) == (cpu == "x86-64-v4")
        if name in ("pointwise", "pointwise_rows_in_one_set"):  # 1x1: whole strips of B read in place from X
            assert "mlcc_ukr_strided_clamp(kc" in source  # with its bias
        got = compiled.run({"x": x})["y"]
    want = run_ort(model, {"x": x})
    # float32 sums of up to 3537 terms in another order than onnxruntime's: near-cancelling outputs of the
    # deepest case (|y| up to 94) differ by 1.3e-4 when the whole depth is one chain (the pixel-major kernels)
    assert_close([got], want, rtol=1e-4, atol=max(1e-4, 2e-6 * float(np.abs(want[0]).max())))


def direct_kernels(graph) -> list:
    """The kernels the graph's (first) PackedConv lowers to."""
    conv = next(n for n in graph.nodes if n.op == "PackedConv")
    return lookup(conv.op, conv.domain, conv.version).lower(conv)


def test_direct_conv_strips_are_grouped_while_their_input_rows_fit_in_l1(monkeypatch):
    # with a 512 KiB L2: resnet50's stage 3 (2.4 MB of weights, 14 strips of 16 virtual columns) in groups
    # of 6 (their K block's input rows fill half of L1), its last stage (9.4 MB, 4 strips) in one group
    # (the weights read once), its first (147 KB of weights) in groups of 3, squeezenet's fire 3x3 (K = 144)
    # in groups of 7; with a 64 KiB L2 only two strips' tiles (132 rows, 8.25 KiB a strip) fit in a third
    monkeypatch.setattr(layout, "BLOCKED_MAX_WASTE", -1)  # else the blocked kernel takes them all
    monkeypatch.setattr(layout, "P_AVX2_DEPTH", 10**9)  # and the pixel-major one, on AVX2
    for (x_shape, w_shape), group, l2 in [
        (CONVS["direct_strip_groups"][:2], 6, 512),
        (((1, 512, 7, 7), (512, 512, 3, 3)), 4, 512),
        (((1, 64, 56, 56), (64, 64, 3, 3)), 3, 512),
        (((1, 16, 55, 55), (64, 16, 3, 3)), 7, 512),
        (((1, 16, 55, 55), (128, 16, 3, 3)), 2, 64),
    ]:
        cpu = dataclasses.replace(cpu_target("x86-64-v3"), l2_bytes=l2 * 1024)
        graph = pack_weights(import_onnx(conv_model(x_shape, w_shape, pads=[1, 1, 1, 1]), {}), cpu)
        (kernel,) = direct_kernels(graph)
        assert (kernel.params["NR"], kernel.params["SG"]) == (16, group)


@pytest.mark.parametrize("cpu", CPUS)
def test_packed_conv_takes_a_residual_relu_epilogue(cpu, tmp_path, monkeypatch):
    model = conv_model((1, 6, 13, 11), (14, 6, 3, 3), residual=[1, 14, 13, 11], pads=[1, 1, 1, 1])
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    rng = np.random.default_rng(2)
    feeds = {
        "x": rng.standard_normal((1, 6, 13, 11)).astype(np.float32),
        "r": rng.standard_normal((1, 14, 13, 11)).astype(np.float32),
    }
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "fused_conv_add_relu" in source and ENGINE_CALLS["direct"] in source  # 6 channels: not blocked
        got = compiled.run(feeds)["y"]
    assert_close([got], run_ort(model, feeds), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cpu", CPUS)
def test_pointwise_conv_reading_x_in_place_takes_a_residual_over_k_blocks(cpu, tmp_path, monkeypatch):
    # two K blocks or more: the first blocks' sums go to Y, the residual stored there first (or added); 2 images,
    # 130 pixels: whole strips in place and a partial last one packed, at 2 threads
    k = 300 if cpu == "x86-64-v3" else KC_MAX + 5
    model = conv_model((2, k, 10, 13), (12, k, 1, 1), residual=[2, 12, 10, 13])
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    rng = np.random.default_rng(4)
    feeds = {
        "x": rng.standard_normal((2, k, 10, 13)).astype(np.float32),
        "r": rng.standard_normal((2, 12, 10, 13)).astype(np.float32),
    }
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "fused_conv_add_relu" in source and "mlcc_ukr_strided(kc" in source
        got = compiled.run(feeds)["y"]
    want = run_ort(model, feeds)
    assert_close([got], want, rtol=1e-4, atol=max(1e-4, 2e-6 * float(np.abs(want[0]).max())))


def test_the_kernel_choice_per_cpu(monkeypatch):
    """Window convolutions whose channels fill blocks of 8 read a channel-blocked copy (every target). Else
    AVX-512 (tiles transposed in registers) takes the in-place pixel-major kernel for convolutions of depth
    128 or more, 1x1 ones too, unless too few output channels fill its NR-wide columns; other targets keep
    it to small maps."""
    chosen = {
        cpu: {name: conv_kind(conv_model(*CONVS[name][:2], **CONVS[name][2]), cpu)[0] for name in CONVS}
        for cpu in ("generic", "x86-64-v4")
    }
    assert chosen["x86-64-v4"]["deep_k_blocks"] == "pixel-direct"  # 3x3 of 33 channels: depth 297
    assert chosen["x86-64-v4"]["3x3_pad"] == "direct"  # depth 45
    assert chosen["x86-64-v4"]["pointwise"] == "packed"  # 1x1 of depth 40
    assert chosen["x86-64-v4"]["pointwise_deep"] == "packed"  # 7 output channels fill 7 of 32 columns
    squeeze = conv_model((1, 256, 12, 12), (64, 256, 1, 1))  # resnet50's 256->64 1x1 in miniature
    assert conv_kind(squeeze, "x86-64-v4")[0] == "pixel-direct" and conv_kind(squeeze, "generic")[0] == "packed"
    expand = conv_model((1, 64, 12, 12), (256, 64, 1, 1))  # depth 64: channel-major
    assert conv_kind(expand, "x86-64-v4")[0] == "packed"
    assert chosen["generic"]["3x3_pad"] == "direct"  # 5 channels: 3 of the 8 computed would be zeros
    eight = conv_model((1, 8, 9, 9), (4, 8, 3, 3), strides=[2, 2])  # a full block
    twelve = conv_model((1, 12, 9, 9), (4, 12, 3, 3), strides=[2, 2])  # 16 computed: a quarter zeros
    # (4 outputs at stride 2: direct over the input's phases, PHASE_MAX_CHANNELS)
    assert conv_kind(eight, "generic")[0] == "blocked" and conv_kind(twelve, "generic")[0] == "direct"
    stem = conv_model(*CONVS["stem_7x7_s2"][:2], **CONVS["stem_7x7_s2"][2])
    assert conv_kind(stem, "x86-64-v3")[0] == "pixel-direct" and conv_kind(stem, "generic")[0] == "direct"
    shallow = conv_model((1, 3, 30, 31), (16, 3, 3, 3), strides=[2, 2])  # depth 27: not pixel-major on AVX2
    assert conv_kind(shallow, "x86-64-v3")[0] == "direct"  # 16 outputs: over the phases
    squeezenet_stem = conv_model((1, 3, 30, 31), (64, 3, 3, 3), strides=[2, 2])  # 64 outputs: im2col
    assert conv_kind(squeezenet_stem, "x86-64-v4")[0] == "packed"
    assert chosen["generic"]["pixel_direct_strided"] == "blocked"  # 16 channels
    assert chosen["generic"]["deep_k_blocks"] == "direct"  # 33 channels: 7 of the 40 computed would be zeros
    assert chosen["generic"]["wide_output"] == "direct"  # 3 channels (a stem): not blocked
    assert chosen["x86-64-v4"]["pixel_direct_strided"] == "blocked"  # 16 channels: blocked on every target
    few = conv_model((1, 33, 8, 8), (9, 33, 3, 3), pads=[1, 1, 1, 1])  # 9 channels would fill 9 of 32 columns
    assert conv_kind(few, "x86-64-v4")[0] == "direct"
    wide = conv_model((1, 1024, 14, 14), (256, 1024, 1, 1))  # resnet50's 1x1 of depth 1024
    assert conv_kind(wide, "x86-64-v4")[0] == "pixel-direct" and conv_kind(wide, "generic")[0] == "packed"
    small_pixel_major(monkeypatch)
    chosen = {name: conv_kind(conv_model(*CONVS[name][:2], **CONVS[name][2]), "x86-64-v4")[0] for name in CONVS}
    assert set(chosen.values()) | {"blocked"} == set(ENGINE_CALLS)  # the test convolutions run every kernel
    assert "blocked" in {conv_kind(conv_model(*CONVS[name][:2], **CONVS[name][2]), "generic")[0] for name in CONVS}
    assert chosen["p_major_conv1d"] == "pixel-packed" and chosen["p_major_1x1"] == "pixel-direct"


@pytest.mark.parametrize("cpu", CPUS)
def test_pixel_direct_conv_without_bias(cpu, tmp_path, monkeypatch):
    model = conv_model((1, 32, 9, 10), (64, 32, 3, 3), bias=False, pads=[1, 1, 1, 1])  # depth 288, 90 pixels
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    x = np.random.default_rng(6).standard_normal((1, 32, 9, 10)).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        if cpu == "x86-64-v4":  # 90 pixels: 13 tiles of 7 rows (the last of 6), not 12 of 8 and one of 2
            assert "mlcc_ukr_gather7(288, xg, 0, bs, OFF, PIX + p0," in (tmp_path / "model.c").read_text()
        got = compiled.run({"x": x})["y"]
    assert_close([got], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)


def small_pixel_major(monkeypatch) -> None:
    """Let the pixel-major kernel take the small test convolutions (by default only wide, deep ones)."""
    monkeypatch.setattr(layout, "P_MAJOR_CHANNELS", 1)
    monkeypatch.setattr(layout, "P_MAJOR_DEPTH", 1)


def test_pixel_tiles_of_seven_rows_where_fewer_rows_are_computed():
    v4 = cpu_target("x86-64-v4")
    assert v4.pixel_rows(49) == 7  # 7x7: 7 tiles of 7, not 7 of 8 (the last with one pixel)
    assert v4.pixel_rows(196) == 7  # 14x14: 28 tiles of 7 rather than 25 of 8
    assert v4.pixel_rows(3136) == v4.pixel_rows(784) == 8  # as many rows either way: fewer tiles
    assert v4.pixel_rows(3025) == v4.pixel_rows(169) == 8  # one row saved does not pay for the extra tiles
    assert cpu_target("x86-64-v3").pixel_rows(49) == cpu_target("generic").pixel_rows(49) == 6  # no transpose


def test_a_map_of_one_pixel_past_whole_tiles_ends_on_a_tile_of_one_row():
    v4 = cpu_target("x86-64-v4")
    assert [v4.pixel_tail(p, v4.pixel_rows(p)) for p in (169, 729, 3025, 100, 49, 784, 54)] == [1, 1, 1, 4, 0, 0, 0]
    assert cpu_target("x86-64-v3").pixel_tail(169, 6) == 0  # no transpose: the whole tile's kernel


def test_shallow_1x1_convs_on_7x7_maps_read_their_pixels_in_place():
    """mobilenet_v2's 160->960 on 7x7 (49 pixels: 15 of 64 channel-major columns wasted, none of 7 pixel rows);
    depth 64 stays channel-major on any map."""
    assert conv_kind(conv_model((1, 160, 7, 7), (960, 160, 1, 1)), "x86-64-v4")[0] == "pixel-direct"
    assert conv_kind(conv_model((1, 64, 14, 14), (384, 64, 1, 1)), "x86-64-v4")[0] == "packed"  # 196 in 208


def test_pixel_major_gain_picks_small_maps(monkeypatch):
    assert p_major_gain(49, 512, 8, 32) == pytest.approx((49 / 56) / (49 / 64))  # 7x7: 64 columns for 49
    assert p_major_gain(100, 256, 8, 32) > 1.05  # 10x10: 112 columns (a half tail) for 100
    assert p_major_gain(196, 256, 8, 32) < 1.05  # 14x14: 208 columns for 196 already
    assert p_major_gain(49, 7, 8, 32) < 1  # 7 output channels in a 32-wide strip
    wide = conv_model((1, 512, 7, 7), (256, 512, 1, 1))  # resnet50's 7x7 stage in miniature
    assert pack_weights(import_onnx(wide, {}), cpu_target("x86-64-v4")).nodes[0].attrs.get("p_major") == 1
    narrow = conv_model((1, 40, 7, 7), (64, 40, 1, 1))
    assert "p_major" not in pack_weights(import_onnx(narrow, {}), cpu_target("x86-64-v4")).nodes[0].attrs
    small_pixel_major(monkeypatch)
    assert pack_weights(import_onnx(narrow, {}), cpu_target("x86-64-v4")).nodes[0].attrs.get("p_major") == 1


@pytest.mark.parametrize("cpu", CPUS)
def test_pixel_major_conv_takes_a_residual_relu_epilogue(cpu, tmp_path, monkeypatch):
    model = conv_model((1, 16, 7, 7), (64, 16, 1, 1), residual=[1, 64, 7, 7])
    monkeypatch.setenv("MLCC_NUM_THREADS", "3")
    small_pixel_major(monkeypatch)
    rng = np.random.default_rng(4)
    feeds = {
        "x": rng.standard_normal((1, 16, 7, 7)).astype(np.float32),
        "r": rng.standard_normal((1, 64, 7, 7)).astype(np.float32),
    }
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "fused_conv_add_relu" in source
        if cpu == "x86-64-v4":  # 8 x 32 tiles: 49 pixels fill 7 panels of 8 rows (gain 1.14)
            assert ENGINE_CALLS["pixel-direct"] in source
        got = compiled.run(feeds)["y"]
    assert_close([got], run_ort(model, feeds), rtol=1e-4, atol=1e-4)


DEPTHWISE = {
    # name: (x shape, w shape, attrs): edges on both sides, strides, dilations, multipliers, tiny planes
    "3x3_pad": ((2, 7, 19, 23), (7, 1, 3, 3), {"group": 7, "pads": [1, 1, 1, 1]}),
    "3x3_stride2": ((1, 9, 20, 17), (9, 1, 3, 3), {"group": 9, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "5x5_dilated_asym": ((1, 4, 16, 18), (4, 1, 5, 5), {"group": 4, "pads": [3, 0, 1, 4], "dilations": [2, 1]}),
    "multiplier3_stride3": ((1, 3, 11, 13), (9, 1, 3, 2), {"group": 3, "strides": [3, 2], "pads": [0, 1, 2, 0]}),
    "window_wider_than_input": ((1, 5, 3, 4), (5, 1, 3, 7), {"group": 5, "pads": [1, 3, 1, 3]}),
    "same_lower_no_bias": ((1, 6, 9, 9), (6, 1, 4, 4), {"group": 6, "auto_pad": "SAME_LOWER", "bias": False}),
    "3x3_long_rows": ((1, 4, 9, 40), (8, 1, 3, 3), {"group": 4, "pads": [1, 2, 1, 0]}),  # stride 1, rows of 38
    "2x4_dilated_tiny": ((1, 3, 4, 5), (3, 1, 2, 4), {"group": 3, "pads": [0, 2, 1, 1], "dilations": [3, 1]}),
    "7x7_map_21_channels": ((2, 21, 7, 7), (21, 1, 3, 3), {"group": 21, "pads": [1, 1, 1, 1]}),  # 16 + 5
    "6x6_map_5x5_no_bias": ((1, 16, 6, 6), (16, 1, 5, 5), {"group": 16, "pads": [2, 1, 3, 3], "bias": False}),
    # column stride 2 or more, output rows of 16 or more (PHASE_MIN_ROW): column phases
    "3x3_stride2_phases": ((1, 5, 36, 37), (5, 1, 3, 3), {"group": 5, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "5x5_multiplier2_phases": ((1, 4, 20, 40), (8, 1, 5, 5), {"group": 4, "pads": [2, 0, 1, 3], "strides": [2, 2]}),
    "3x4_stride3_phases": ((1, 3, 10, 53), (3, 1, 3, 4), {"group": 3, "pads": [1, 2, 0, 0], "strides": [1, 3]}),
    "2x2_phases_last_column_unread": (
        (1, 3, 9, 40),
        (3, 1, 2, 2),
        {"group": 3, "pads": [0, 1, 0, 0], "strides": [2, 2]},
    ),
    # with 16-float vectors blocked too (BLOCK_PIXELS_V16, 40 channels: 48 lanes), copies by register transposes
    "v16_14x14_40_channels": ((1, 40, 14, 14), (40, 1, 3, 3), {"group": 40, "pads": [1, 1, 1, 1]}),
    "v16_stride2_40_channels": ((2, 40, 13, 11), (40, 1, 3, 3), {"group": 40, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "v16_stride2_48_channels_phases": (  # rows of 16: column phases elsewhere
        (1, 48, 8, 31),
        (48, 1, 3, 3),
        {"group": 48, "pads": [1, 1, 1, 1], "strides": [2, 2]},
    ),
    # column stride 1 with 8- or 16-float vectors: rows copied into a ring of shifted copies (vector rows):
    # rows of 100 (groups of 4 vectors, then 3 with a partial one), row stride 2, column dilation, and rows of
    # one vector computed 4 at a time with 2 left over (2 at a time with 8-float vectors)
    "3x3_rows_of_100": ((1, 4, 10, 100), (4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
    "3x3_row_stride2": ((1, 6, 21, 30), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1], "strides": [2, 1]}),
    "3x3_dilated_2x2": ((1, 5, 12, 33), (5, 1, 3, 3), {"group": 5, "pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    "3x3_rows_of_12": ((1, 3, 42, 12), (3, 1, 3, 3), {"group": 3, "pads": [1, 0, 1, 1]}),
}
# stride 1 and maps of at most 64 outputs (ops/depthwise.py BLOCK_PIXELS), one channel per group: blocks of
# 16 channels, pixel-major on the stack; other stride-1 maps with output rows of at most 28 (SHORT_ROW): the
# padded plane in a stack buffer as one loop; the others row by row, rows outside the input read from a zero row
DEPTHWISE_BLOCKED = {"window_wider_than_input", "2x4_dilated_tiny", "7x7_map_21_channels", "6x6_map_5x5_no_bias"}
DEPTHWISE_PLANE = {"3x3_pad", "5x5_dilated_asym", "same_lower_no_bias", "v16_14x14_40_channels", "3x3_rows_of_12"}
DEPTHWISE_PHASES = {n for n in DEPTHWISE if "phases" in n}
# with 16-float vectors (x86-64-v4) blocked also: maps of up to 256 outputs and strides, channels that fill
# 4/5 of their blocks; the copies in and out are register transposes where the whole input is inside the
# window (not so in 2x2_phases_last_column_unread: element by element there)
DEPTHWISE_V16 = {"v16_14x14_40_channels", "v16_stride2_40_channels", "v16_stride2_48_channels_phases"}
DEPTHWISE_SHUFFLED = DEPTHWISE_BLOCKED | DEPTHWISE_V16
# with 8- and 16-float vectors, the others at column stride 1, or 2 with rows of 16 or more: vector rows
DEPTHWISE_VROWS = {n for n, (_, _, a) in DEPTHWISE.items() if a.get("strides", [1, 1])[1] == 1} - DEPTHWISE_BLOCKED
DEPTHWISE_VROWS |= DEPTHWISE_PHASES - {"3x4_stride3_phases"}


def depthwise_mode(name: str, cpu: str) -> str:
    """What marks the generated source of DEPTHWISE[name]'s kernel on `cpu`."""
    if name in DEPTHWISE_BLOCKED or (cpu == "x86-64-v4" and name in DEPTHWISE_V16):
        return "_Alignas(64) float xt["
    if cpu != "generic" and name in DEPTHWISE_VROWS:
        return "float ring["
    if name in DEPTHWISE_PLANE:
        return "float xp["
    return "zero_phases" if name in DEPTHWISE_PHASES else "zero_row"


@pytest.mark.parametrize(("cpu", "threads"), RUNS)
@pytest.mark.parametrize("name", sorted(DEPTHWISE))
def test_depthwise_conv_matches_onnxruntime(name, cpu, threads, tmp_path, monkeypatch):
    x_shape, w_shape, attrs = DEPTHWISE[name]
    model = conv_model(x_shape, w_shape, **attrs)
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    x = np.random.default_rng(6).standard_normal(x_shape).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        # the depthwise kernel ran (not the direct one), in the mode its shape calls for
        v16 = cpu == "x86-64-v4"
        source = (tmp_path / "model.c").read_text()
        assert ("typedef float mlcc_v16 " in source) == (v16 and name in DEPTHWISE_SHUFFLED)
        assert depthwise_mode(name, cpu) in source
        got = compiled.run({"x": x})["y"]
    assert_close([got], run_ort(model, {"x": x}), rtol=1e-4, atol=1e-4)


V4 = pytest.mark.skipif("x86-64-v4" not in HOST_CPUS, reason="this host has no AVX-512")
V3 = pytest.mark.skipif("x86-64-v3" not in HOST_CPUS, reason="this host has no AVX2")


@pytest.mark.parametrize(
    ("width", "stride", "channels", "cpu", "mode"),
    [
        (4, 1, 8, "generic", "_Alignas(64) float xt["),
        (11, 1, 8, "generic", "float xp["),
        (37, 1, 8, "generic", "zero_row"),
        (40, 2, 8, "generic", "zero_phases"),
        pytest.param(11, 2, 28, "x86-64-v4", "typedef float mlcc_v16 ", marks=V4),  # blocked, transposes
        pytest.param(37, 1, 8, "x86-64-v3", "float ring[", marks=V3),  # vector rows, the epilogue after each row
        pytest.param(40, 2, 8, "x86-64-v3", "float ring[", marks=V3),
    ],
    ids=["blocked", "plane", "rows", "phases", "blocked_v16", "vector_rows", "vector_rows_stride2"],
)
def test_depthwise_conv_takes_a_residual_relu_epilogue(width, stride, channels, cpu, mode, tmp_path, monkeypatch):
    out = [1, channels, (13 - 1) // stride + 1, (width - 1) // stride + 1]
    model = conv_model(
        (1, channels, 13, width),
        (channels, 1, 3, 3),
        residual=out,
        group=channels,
        pads=[1, 1, 1, 1],
        strides=[stride, stride],
    )
    monkeypatch.setenv("MLCC_NUM_THREADS", "2")
    rng = np.random.default_rng(3)
    feeds = {
        "x": rng.standard_normal((1, channels, 13, width)).astype(np.float32),
        "r": rng.standard_normal(out).astype(np.float32),
    }
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "fused_conv_add_relu" in source and mode in source
        got = compiled.run(feeds)["y"]
    assert_close([got], run_ort(model, feeds), rtol=1e-4, atol=1e-4)


def gemm_model(a_shape, b_shape, c_shape=None, relu=False, silu=False, **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(len(a_shape) + sum(b_shape))
    inits = [numpy_helper.from_array(rng.standard_normal(b_shape).astype(np.float32), "b")]
    inputs = ["a", "b"]
    if c_shape is not None:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_shape).astype(np.float32), "c"))
        inputs.append("c")
    nodes = [helper.make_node("Gemm", inputs, ["g" if relu or silu else "y"], **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["g"], ["y"]))
    if silu:  # a heavy epilogue: on each panel's rows once its strips are done (gemm_packed.c.j2)
        nodes += [helper.make_node("Sigmoid", ["g"], ["sg"]), helper.make_node("Mul", ["g", "sg"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def matmul_model(a_shape, b_shape, bias=False) -> onnx.ModelProto:
    rng = np.random.default_rng(sum(b_shape))
    inits = [numpy_helper.from_array(rng.standard_normal(b_shape).astype(np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["a", "b"], ["m" if bias else "y"])]
    if bias:  # MatMul + Add becomes MatMulBias at -O1 (passes/fold_batchnorm.py), then PackedMatMul
        inits.append(numpy_helper.from_array(rng.standard_normal(b_shape[1]).astype(np.float32), "bias"))
        nodes.append(helper.make_node("Add", ["m", "bias"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


GEMMS = {
    "plain": lambda: gemm_model((7, 19), (19, 23)),
    "transB_alpha_beta_rowbias": lambda: gemm_model((5, 30), (41, 30), (41,), transB=1, alpha=0.5, beta=2.0),
    "full_c_relu": lambda: gemm_model((13, 9), (9, 17), (13, 17), relu=True),
    "column_c": lambda: gemm_model((8, 12), (12, 10), (8, 1)),
    "deep_and_wide": lambda: gemm_model((3, KC_MAX + 70), (KC_MAX + 70, 300)),
    "gemv": lambda: gemm_model((1, 64), (64, 1000), (1000,), transB=0),
    # one row: the micro-kernel's matrix-vector path; K odd (its tail steps) and over KC (blocks accumulate)
    "gemv_deep_odd_relu": lambda: gemm_model((1, KC_MAX + 71), (300, KC_MAX + 71), (300,), transB=1, relu=True),
    "matmul_one_row_bias": lambda: matmul_model((1, 1, 45), (45, 70), bias=True),
    "full_c_silu": lambda: gemm_model((13, 9), (9, 17), (13, 17), silu=True),
    "deep_wide_silu": lambda: gemm_model((14, KC_MAX + 70), (KC_MAX + 70, 300), (300,), silu=True),
    "matmul_3d": lambda: matmul_model((2, 7, 20), (20, 33)),
    "matmul_bias_4d": lambda: matmul_model((2, 3, 5, 16), (16, 24), bias=True),
}


@pytest.mark.parametrize(("cpu", "threads"), RUNS)
@pytest.mark.parametrize("name", sorted(GEMMS))
def test_packed_gemm_matches_onnxruntime(name, cpu, threads, tmp_path, monkeypatch):
    model = GEMMS[name]()
    a_shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    a = np.random.default_rng(9).standard_normal(a_shape).astype(np.float32)
    with compile_and_load(model, tmp_path, cpu=cpu) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert "mlcc_ukr_rows" in source
        assert ("long runs overlap" in source) == ("silu" in name)
        got = compiled.run({"a": a})["y"]
    assert_close([got], run_ort(model, {"a": a}), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cpu", CPUS)
def test_a_classifier_at_batch_1_builds_without_warnings_at_o3(cpu, tmp_path):
    """resnet50's classifier (one row: the micro-kernel's matrix-vector path) at the Makefile's -O3: GCC's
    loop analysis warned that its K loop could overflow (`k4 + 4 <= kc`)."""
    source = build_c_strictly(gemm_model((1, 2048), (1000, 2048), (1000,), transB=1), tmp_path, cpu=cpu, opt="-O3")
    assert "mlcc_ukr_rows" in source


def attention_model(q_shape, k_shape, v_shape, scale_and_mask=True) -> onnx.ModelProto:
    """softmax(Q @ K^T / 8 + mask) @ V with computed operands on both sides of both MatMuls."""
    nodes = [
        helper.make_node(
            "Transpose", ["k"], ["kt"], perm=list(range(len(k_shape) - 2)) + [len(k_shape) - 1, len(k_shape) - 2]
        ),
        helper.make_node("MatMul", ["q", "kt"], ["s" if scale_and_mask else "m"]),
    ]
    inits = []
    if scale_and_mask:  # the epilogue of the first MatMul: Div by a scalar, Add a mask read per element
        inits.append(numpy_helper.from_array(np.array(8.0, np.float32), "scale"))
        nodes += [helper.make_node("Div", ["s", "scale"], ["d"]), helper.make_node("Add", ["d", "mask"], ["m"])]
    nodes += [helper.make_node("Softmax", ["m"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "v"], ["y"])]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
        for n, s in (("q", q_shape), ("k", k_shape), ("v", v_shape))
    ]
    if scale_and_mask:
        mask_shape = q_shape[:-1] + [k_shape[-2]]
        inputs.append(
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1] * (len(mask_shape) - 1) + mask_shape[-1:])
        )
    graph = helper.make_graph(
        nodes, "attention", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


ATTENTION = {
    # name: (q, k, v shapes); K > KC, N % NR, broadcast batch dims, one head
    "heads": ([1, 3, 20, 16], [1, 3, 37, 16], [1, 3, 37, 24]),
    "deep_head": ([2, 9, KC_MAX + 21], [2, 40, KC_MAX + 21], [2, 40, 5]),
    "broadcast_batch": ([2, 3, 7, 8], [1, 3, 11, 8], [3, 11, 70]),
    "plain_2d": ([33, 12], [65, 12], [65, 9]),
}


@pytest.mark.parametrize(("cpu", "threads"), RUNS)
@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_matmul_of_computed_operands_matches_onnxruntime(name, cpu, threads, tmp_path, monkeypatch):
    q_shape, k_shape, v_shape = ATTENTION[name]
    model = attention_model(q_shape, k_shape, v_shape, scale_and_mask=name != "plain_2d")
    assert packed_ops(model).count("RuntimeMatMul") == 2
    monkeypatch.setenv("MLCC_NUM_THREADS", str(threads))
    rng = np.random.default_rng(4)
    feeds = {
        i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
        for i in model.graph.input
    }
    # without attention recognition (tests/unit/test_pass_attention.py), which would take the whole pattern
    with compile_and_load(model, tmp_path, cpu=cpu, disable_passes=["recognize_attention"]) as compiled:
        source = (tmp_path / "model.c").read_text()
        assert source.count("mlcc_pack_b(B,") == 2  # both MatMuls pack B at run time
        if name != "plain_2d":
            assert "fused_matmul_div_add" in source
        got = compiled.run(feeds)["y"]
    assert_close([got], run_ort(model, feeds), rtol=1e-4, atol=1e-4)


def test_every_cpu_choice_builds_and_the_flag_reaches_the_makefile(tmp_path):
    model = conv_model((1, 3, 8, 8), (4, 3, 3, 3))
    for cpu in ("generic", "x86-64-v3", "x86-64-v4", "native"):
        import mlcc

        mlcc.compile(model, out_dir=tmp_path / cpu, cpu=cpu, build=False)
        makefile = (tmp_path / cpu / "Makefile").read_text()
        assert f"MLCC_ARCH = {cpu_target(cpu).march}" in makefile
        assert f"{cpu_target(cpu).vw}-float vectors" in (tmp_path / cpu / "model.c").read_text()


@pytest.mark.parametrize(
    "name",
    [
        "blocked_partial_block",
        "blocked_5x5_stride2",
        "blocked_same_upper",
        "stem_7x7_s2",
        "phases_stem",
        "phases_grouped_s3",
    ],
)
def test_packed_conv_references_read_their_layouts(name):
    """The numpy references of PadBlocks, PadPlanes, PadPhases and the in-place PackedConvs (what constant
    folding runs) undo the layouts the pass chose (channel blocks, W^T in block order, padded planes, phases)."""
    x_shape, w_shape, attrs = CONVS[name]
    model = conv_model(x_shape, w_shape, **attrs)
    graph = pack_weights(import_onnx(model, {}), cpu_target("x86-64-v3"))
    x = np.random.default_rng(3).standard_normal(x_shape).astype(np.float32)
    values = {id(graph.inputs[0]): x}
    for node in graph.nodes:
        inputs = [None if v is None else values.get(id(v), v.data) for v in node.inputs]
        (values[id(node.outputs[0])],) = lookup(node.op, node.domain, node.version).reference(node, inputs)
    assert graph.nodes[0].op == {"stem": "PadPlanes", "phases": "PadPhases"}.get(name.split("_")[0], "PadBlocks")
    want = run_ort(model, {"x": x})
    assert_close([values[id(graph.nodes[-1].outputs[0])]], want, rtol=1e-4, atol=2e-6 * float(np.abs(want[0]).max()))


@pytest.mark.parametrize("cpu", CPUS)
def test_conv_kernels_build_without_warnings(cpu, tmp_path):
    """-Wall -Wextra -Werror over a 1x1 convolution deeper than KC (K blocks, its input read in place where the
    cpu packs it channel-major) and a depthwise one with a Clip after each (vector rows with AVX2 and AVX-512:
    the Clip's bound operands unused there, the clamp in registers)."""
    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array(rng.standard_normal((32, KC_MAX + 16, 1, 1)).astype(np.float32), "w0"),
        numpy_helper.from_array(rng.standard_normal((32, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b1"),
        numpy_helper.from_array(np.float32(0), "lo"),
        numpy_helper.from_array(np.float32(6), "hi"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"]),
        helper.make_node("Clip", ["c0", "lo", "hi"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], group=32, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, KC_MAX + 16, 20, 20))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    source = build_c_strictly(model, tmp_path, cpu=cpu)
    assert ("float ring[" in source) == (cpu != "generic")
