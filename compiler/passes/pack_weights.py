"""Layout: constant weights re-laid out at compile time for the c target's GEMM engine (compiler/cpu.py).

  Conv with constant float32 W (not depthwise)      ->  PackedConv(X, W packed in MR-row panels[, B])
  ... 2-D, window > 1x1, channels filling blocks of 8
                                                     ->  PadBlocks(X) -> PackedConv(p_major, direct, blocked,
                                                         W^T in (block, kh, kw, channel) order, OFF, PIX)
  ... small output maps (7x7, 10x10), with AVX-512 deep ones, with AVX2 deep stems
                                                     ->  PackedConv(p_major, W^T packed in NR strips)
      ... 2-D                                        ->  [PadPlanes(X) ->] PackedConv(p_major, direct, OFF, PIX)
  ... 2-D, stride 1, window > 1x1                    ->  PadPlanes(X) -> PackedConv(direct, offsets table)
  ... 2-D, stride s > 1, few outputs                 ->  PadPhases(X) -> PackedConv(direct, phases, offsets)
  2-D depthwise float32 Conv (one channel per group) ->  DepthwiseConv(X, W[, B]) (ops/depthwise.py)
  Gemm (transA = 0) with constant B                 ->  PackedMatMul(A, alpha * B packed in NR strips[, C])
  MatMul(A, constant 2-D B), MatMulBias             ->  PackedMatMul(A, B packed[, bias])
  MatMul of computed float32 A, B (rank >= 2)       ->  RuntimeMatMul(A, B) (B packed per block at run time)

(ops/packed.py describes both layouts.) The packed constant replaces the original, which dead-code
elimination drops when nothing else reads it. A Gemm with transA, a beta other than 1 on a computed C, or
a C that does not broadcast over rows keeps its own kernel. Depthwise convolutions keep their weights as
they are (one small window per channel) but get their own kernel; 1-D and 3-D ones keep the direct kernel.
"""

from __future__ import annotations

import math

import numpy as np

from ..cpu import L1_BYTES, CpuTarget, cpu_target, transpose_plan
from ..ir.dtypes import FLOAT32, INT32
from ..ir.graph import Graph, Node, Value
from ..ops.conv import conv_geometry
from ..ops.depthwise import is_depthwise_2d
from ..ops.packed import (
    BLOCK_CHANNELS,
    PACKED_DOMAIN,
    p_major_gain,
    pack_conv_weights,
    pack_conv_weights_p_major,
    pack_gemm_weights,
)
from .dce import eliminate_dead_code
from .fold_batchnorm import FreshNames

# The pixel-major kernel (small maps, ops/packed.py p_major_gain): where it does at least P_MAJOR_GAIN
# times the useful work, on maps of at most P_MAJOR_PIXELS pixels, with at least P_MAJOR_CHANNELS output
# channels per group and a depth of at least P_MAJOR_DEPTH. Below that its own costs (the transposed
# stores, patch panels per K block) ate the gain in measurements: 10x10 maps (gain 1.08), densenet's
# 128- and 32-channel 7x7 convolutions ran 1.5% slower, mobilenet_v2's shallow 7x7 ones no faster;
# resnet50's 7x7 stage (gain 1.14, 512 and 2048 channels, depth 512 to 4608) 1.5% faster overall.
# With the input read in place (2-D: _pixel_direct_conv) and the tile transposed in registers (AVX-512), the
# pixel-major kernel has no packing cost and no waste but its partial last panel: it beat the channel-major
# kernels on every convolution of depth P_DIRECT_DEPTH or more. Window ones (S5, Zen 4): 3x3 at stride 1 and 2,
# 13x13 to 56x56 maps, 4-23% less time per convolution; the 7x7 stride-2 stem tied. 1x1 ones (Zen 4, one
# convolution + Relu alone, time vs the channel-major packed kernel; S5's kernel lost on shallow ones, the
# later kernel with its stores in runs of 8 tiles does not): 256->64, 256->128 and 256->1024 at 56x56 and
# 14x14 0.83-0.94, 512->1024 stride 2 at 28x28 0.92, 384->64 at 13x13 0.92, 512->2048 at 7x7 0.94, 128->16,
# 128->512, 512->1000 0.98; 1x1 of depth 16 to 64 lose or tie (16->64 1.09, 32->128 1.03, 64->256 1.02,
# 64->64 0.91) and keep the channel-major kernel, as do 3x3 ones of depth under 128 (3 channels 1.5x slower).
P_DIRECT_DEPTH = 128
P_DIRECT_MIN_GAIN = 0.75
P_MAJOR_GAIN = 1.10
P_MAJOR_PIXELS = 128
P_MAJOR_CHANNELS = 256
P_MAJOR_DEPTH = 512
# strided convolutions direct over their input's phases (_phase_direct_conv), at strides up to PHASE_MAX_STRIDE
# and with at most PHASE_MAX_CHANNELS outputs per group: against im2col, stems 3 -> M 3x3/2 alone (Zen 4, 1
# thread): M = 16 at 320x320 0.831 of the time, M = 32 at 224x224 0.921 (padded) and 0.955, M = 64 0.998 and
# 1.040 (its tiles' pass from the scratch into Y, which im2col's clamp in registers does without, grows with M)
PHASE_MAX_STRIDE = 4
PHASE_MAX_CHANNELS = 32
DIRECT_MAX_WASTE = 0.3  # the share of virtual columns a direct convolution may compute and discard
# Window convolutions whose channels fill their blocks but for at most BLOCKED_MAX_WASTE of the channels
# computed read a channel-blocked copy of their input (_blocked_conv), on every target. On AVX-512 (Zen 4,
# against the pixel-major kernel reading the plain input in place, one convolution + Relu alone): 3x3 stride 1
# on 7x7 to 80x80 maps, 32 to 512 channels, 0.98-1.00; 16->32 stride 2 at 160x160 0.96; models (1 thread):
# resnet50 0.988, squeezenet 0.997, densenet121 0.996, yolo_320 0.998. On AVX2 (Zen 3, one convolution + Relu
# alone, time vs the channel-major direct or im2col kernels): 3x3 stride 1 on 13x13 to 56x56 maps, 32 to 256 channels, 0.82-0.91; 3x3 stride
# 2 (16->32 at 160x160, 128->128 at 56x56) 0.82, 0.91; 16->64 at 55x55 0.99; 512->512 at 7x7 1.02; 8
# channels (after the transposed store in registers): 8->16 at 80x80 0.89, 8->32 stride 2 0.75, 8->64 at
# 56x56 0.93. 12 channels (16 computed) 1.29; 3 (stems: 8 computed) 2-4x slower.
BLOCKED_MAX_WASTE = 1 / 8
# On AVX2, window convolutions left channel-major (channels that do not fill blocks) take the pixel-major
# kernel on their NCHW input in place at a depth of P_AVX2_DEPTH_STRIDED or more where strided (instead of
# im2col: 3 channels 7x7 stride 2 at 224x224 0.84 of the time, 5x5 0.75; 3x3 of depth 27 0.91-1.09), and of
# P_AVX2_DEPTH or more at stride 1 (instead of the direct kernel: 7x7 of 3 channels and 5x5 of 4 0.94; 3x3 of
# 6 and 12 channels 1.05, 1.06).
P_AVX2_DEPTH_STRIDED = 64
P_AVX2_DEPTH = 96


def _strip_group(packed: Node, kernel, dil, width: int, virtual: int, cpu: CpuTarget) -> int:
    """How many NR-column strips a direct convolution computes per pass over its weights (conv_direct.c.j2):
    the most whose input rows of one K block fit in half of L1, counted per channel of the block as the
    virtual columns the strips span plus the window's reach (or, where that runs over whole rows, a run of
    NR + (KW - 1) * DW floats and a cache line per window row), and whose tiles (the worker's scratch) fit
    in a third of L2. resnet50's last stage (7x7 maps, 4 strips) then reads its 9.4 MB weight matrices from
    memory once per run instead of 4 times; and a group's tile rows are stored to Y in runs of up to an
    output row instead of NR pieces (squeezenet's fire 3x3 convolutions, whose weights fit in L2: 5% faster)."""
    wp = packed.inputs[1]
    kc, nr = packed.attrs["kc"], cpu.nr
    channels = -(-kc // (kernel[0] * kernel[1])) + 1
    reach_rows, reach_cols = (kernel[0] - 1) * dil[0], (kernel[1] - 1) * dil[1]
    group, strips, tiles = 1, -(-virtual // nr), wp.shape[1] * nr * 4  # a strip's tiles: one per row panel
    while group < strips and (group + 1) * tiles <= cpu.l2_bytes // 3:
        cols = (group + 1) * nr
        span = min(cols + reach_rows * width + reach_cols, kernel[0] * (cols + reach_cols + 16))
        if channels * span * 4 > L1_BYTES // 2:
            break
        group += 1
    return group


def _direct_conv(node: Node, packed: Node, cpu: CpuTarget, fresh: FreshNames) -> list[Node] | None:
    """A stride-1 2-D PackedConv as PadPlanes + a direct PackedConv that reads the padded input in place
    (ops/packed.py): no im2col. The padded input has slack rows at the bottom, so that the micro-kernel's
    full-width reads past the last virtual column stay inside it."""
    x = node.inputs[0]
    geometry = conv_geometry(node, x.shape, tuple(packed.attrs["w_shape"]))
    group, kernel, out, begin, end, strides, dil = geometry
    if x.rank != 4 or list(kernel) == [1, 1] or min(begin + end) < 0:
        return None
    if strides != [1, 1]:
        return _phase_direct_conv(node, packed, geometry, cpu, fresh)
    width = x.shape[3] + begin[1] + end[1]
    if (kernel[1] - 1) * dil[1] > DIRECT_MAX_WASTE * width:
        return None
    slack = (cpu.nr - 2 + (kernel[1] - 1) * dil[1]) // width + 1
    pads = [begin[0], begin[1], end[0] + slack, end[1]]
    xp = Value(fresh(x.name, "padded"), FLOAT32, x.shape[:2] + (x.shape[2] + pads[0] + pads[2], width))
    pad = Node("PadPlanes", [x], [xp], {"pads": pads}, f"{node.name}:pad", PACKED_DOMAIN, 1)
    cg, taps = x.shape[1] // group, kernel[0] * kernel[1]
    k = np.arange(cg * taps)
    offsets = (
        (k // taps) * (xp.shape[2] * width) + (k // kernel[1] % kernel[0]) * dil[0] * width + (k % kernel[1]) * dil[1]
    )
    group_size = _strip_group(packed, kernel, dil, width, out[0] * width, cpu)
    return _direct_nodes(node, packed, pad, offsets, {"slack_rows": slack, "strip_group": group_size}, fresh)


def _phase_direct_conv(node: Node, packed: Node, geometry, cpu: CpuTarget, fresh: FreshNames) -> list[Node] | None:
    """A 2-D PackedConv at stride s in both axes (no dilation) as PadPhases + a direct PackedConv: the padded
    input split into its s x s phases (rows s*i + pr, columns s*j + pc), so that tap (kh, kw) of output (oh, ow)
    is phase (kh % s, kw % s) at (oh + kh // s, ow + kw // s), a stride-1 window read in place over a virtual
    grid as wide as a phase row: no im2col. The phases have slack rows at the bottom like PadPlanes' planes."""
    x = node.inputs[0]
    group, kernel, out, begin, end, strides, dil = geometry
    s, mg = strides[0], packed.attrs["w_shape"][0] // group
    if strides != [s, s] or dil != [1, 1] or s > PHASE_MAX_STRIDE or mg > PHASE_MAX_CHANNELS:
        return None
    hp, wp = x.shape[2] + begin[0] + end[0], x.shape[3] + begin[1] + end[1]
    h2, width = -(-hp // s), -(-wp // s)
    if width - out[1] > DIRECT_MAX_WASTE * width:
        return None
    reach = ((kernel[0] - 1) // s, (kernel[1] - 1) // s)  # a window's extent in a phase, less one
    slack = (cpu.nr - 2 + reach[1]) // width + 1
    xp = Value(fresh(x.name, "phases"), FLOAT32, (x.shape[0], x.shape[1] * s * s, h2 + slack, width))
    pads = [begin[0], begin[1], end[0], end[1]]
    pad = Node(
        "PadPhases", [x], [xp], {"pads": pads, "stride": s, "slack": slack}, f"{node.name}:phases", PACKED_DOMAIN, 1
    )
    cg, taps = x.shape[1] // group, kernel[0] * kernel[1]
    k = np.arange(cg * taps)
    c, kh, kw = k // taps, k // kernel[1] % kernel[0], k % kernel[1]
    offsets = ((c * s + kh % s) * s + kw % s) * ((h2 + slack) * width) + (kh // s) * width + kw // s
    group_size = _strip_group(packed, (reach[0] + 1, reach[1] + 1), [1, 1], width, out[0] * width, cpu)
    attrs = {"phases": s, "padded": [hp, wp], "slack_rows": slack, "strip_group": group_size}
    return _direct_nodes(node, packed, pad, offsets, attrs, fresh)


def _direct_nodes(node: Node, packed: Node, pad: Node, offsets: np.ndarray, attrs: dict, fresh: FreshNames):
    """`pad` and the direct PackedConv that reads its output in place through the tap offsets, or None where
    an offset into a plane group would overflow int32."""
    xp = pad.outputs[0]
    if offsets.max() + xp.shape[2] * xp.shape[3] >= 2**31:
        return None
    off = Value(fresh(node.name, "offsets"), INT32, (len(offsets),), offsets.astype(np.int32))
    attrs = dict(packed.attrs, direct=1, pads=[0, 0, 0, 0], auto_pad="NOTSET", **attrs)
    b = packed.input(2)
    conv = Node("PackedConv", [xp, packed.inputs[1], b, off], packed.outputs, attrs, packed.name, PACKED_DOMAIN, 1)
    return [pad, conv]


def _in_place_tables(channels, kernel, dil, out, strides, height, width, mr, block=1):
    """OFF and PIX of a 2-D pixel-major PackedConv that reads its padded input ([.., height, width, block]) in
    place (conv_pmajor.c.j2): OFF[k] the offset of k = (channel block, kh, kw, channel in block) from a window's
    corner, PIX[p] the corner of output pixel p's window, in whole tiles of mr (past the last pixel: the last
    one again). A block of 1 is a plain NCHW input, k = (c, kh, kw)."""
    taps = kernel[0] * kernel[1]
    k = np.arange(channels * taps)
    cb, t, ci = k // (taps * block), k // block % taps, k % block
    offsets = ((cb * height + t // kernel[1] * dil[0]) * width + t % kernel[1] * dil[1]) * block + ci
    pixels = out[0] * out[1]
    p = np.minimum(np.arange(-(-pixels // mr) * mr), pixels - 1)
    corners = ((p // out[1]) * strides[0] * width + (p % out[1]) * strides[1]) * block
    return offsets, corners


def _pixel_direct_conv(node: Node, packed: Node, cpu: CpuTarget, fresh: FreshNames) -> list[Node] | None:
    """A 2-D pixel-major PackedConv as [PadPlanes +] a direct one that reads the padded input in place:
    A[p, k] = Xp[PIX[p] + OFF[k]], PIX[p] the corner of output pixel p's window in Xp, OFF[k] the offset of
    k = (c, kh, kw) in it (conv_pmajor.c.j2). Any stride and dilation; nothing packed at run time."""
    x = node.inputs[0]
    group, kernel, out, begin, end, strides, dil = conv_geometry(node, x.shape, tuple(packed.attrs["w_shape"]))
    if x.rank != 4 or min(begin + end) < 0:
        return None
    pads = [begin[0], begin[1], end[0], end[1]]
    xp = x
    if any(pads):
        xp = Value(
            fresh(x.name, "padded"),
            FLOAT32,
            x.shape[:2] + (x.shape[2] + pads[0] + pads[2], x.shape[3] + pads[1] + pads[3]),
        )
    height, width = xp.shape[2:]
    mr = cpu.pixel_rows(out[0] * out[1])
    offsets, corners = _in_place_tables(x.shape[1] // group, kernel, dil, out, strides, height, width, mr)
    if offsets.max() + corners.max() + x.shape[1] * height * width >= 2**31:
        return None
    off = Value(fresh(node.name, "offsets"), INT32, offsets.shape, offsets.astype(np.int32))
    pix = Value(fresh(node.name, "pixels"), INT32, corners.shape, corners.astype(np.int32))
    tail = cpu.pixel_tail(out[0] * out[1], mr)
    attrs = dict(packed.attrs, direct=1, mr=mr, tail=tail, pads=[0, 0, 0, 0], auto_pad="NOTSET")
    conv = Node(
        "PackedConv",
        [xp, packed.inputs[1], packed.input(2), off, pix],
        packed.outputs,
        attrs,
        packed.name,
        PACKED_DOMAIN,
        1,
    )
    if xp is x:
        return [conv]
    return [Node("PadPlanes", [x], [xp], {"pads": pads}, f"{node.name}:pad", PACKED_DOMAIN, 1), conv]


def _blocked_conv(node: Node, cpu: CpuTarget, fresh: FreshNames) -> list[Node] | None:
    """A 2-D window convolution (group 1, float32, constant W) as PadBlocks + a blocked pixel-major PackedConv:
    the input zero padded and channel-blocked ([N, C / 8, H, W, 8], ops/packed.py), then read in place as
    A[p, k] = Xb[PIX[p] + OFF[k]] with k = (channel block, kh, kw, channel in block), so that one window
    position's 8 channels are neighbours in memory; the weights W^T in NR-channel strips in that order of k
    (conv_pmajor.c.j2). Any stride and dilation, nothing packed at run time but the input's one copy."""
    x, w = node.inputs[0], node.input(1)
    if w is None or not w.is_const or x.dtype != FLOAT32 or w.dtype != FLOAT32 or x.rank != 4 or x.size == 0:
        return None
    if node.attr("group", 1) != 1 or w.shape[2:] == (1, 1) or w.size == 0:
        return None
    computed = -(-w.shape[1] // BLOCK_CHANNELS) * BLOCK_CHANNELS
    if computed - w.shape[1] > BLOCKED_MAX_WASTE * computed:
        return None
    _, kernel, out, begin, end, strides, dil = conv_geometry(node, x.shape, w.shape)
    if min(begin + end) < 0:
        return None
    m, c = w.shape[:2]
    blocks = -(-c // BLOCK_CHANNELS)
    cp = blocks * BLOCK_CHANNELS
    pads = [begin[0], begin[1], end[0], end[1]]
    height, width = x.shape[2] + pads[0] + pads[2], x.shape[3] + pads[1] + pads[3]
    xb = Value(fresh(x.name, "blocked"), FLOAT32, (x.shape[0], blocks, height, width, BLOCK_CHANNELS))
    mr = cpu.pixel_rows(out[0] * out[1])
    offsets, corners = _in_place_tables(cp, kernel, dil, out, strides, height, width, mr, BLOCK_CHANNELS)
    if offsets.max() + corners.max() + xb.size >= 2**31:
        return None
    # W [M, C, KH, KW] -> [M, blocks, KH, KW, 8] (zero past C): k's order
    wb = np.pad(w.data, [(0, 0), (0, cp - c), (0, 0), (0, 0)])
    wb = wb.reshape(m, blocks, BLOCK_CHANNELS, *kernel).transpose(0, 1, 3, 4, 2)
    packed = pack_conv_weights_p_major(np.ascontiguousarray(wb), 1, cpu.nr)
    wp = Value(fresh(w.name, "packed"), FLOAT32, packed.shape, packed)
    off = Value(fresh(node.name, "offsets"), INT32, offsets.shape, offsets.astype(np.int32))
    pix = Value(fresh(node.name, "pixels"), INT32, corners.shape, corners.astype(np.int32))
    depth = len(offsets)
    attrs = dict(node.attrs, source_op="Conv", w_shape=[m, cp, *kernel], mr=mr, nr=cpu.nr, kc=cpu.kc_for(depth))
    attrs.update(nc=cpu.nc(depth), p_major=1, direct=1, tail=cpu.pixel_tail(out[0] * out[1], mr))
    attrs.update(blocked=BLOCK_CHANNELS, pads=[0, 0, 0, 0], auto_pad="NOTSET")
    conv = Node("PackedConv", [xb, wp, node.input(2), off, pix], node.outputs, attrs, node.name, PACKED_DOMAIN, 1)
    return [Node("PadBlocks", [x], [xb], {"pads": pads}, f"{node.name}:blocks", PACKED_DOMAIN, 1), conv]


def _packed_conv(node: Node, cpu: CpuTarget, fresh: FreshNames) -> Node | None:
    x, w = node.inputs[0], node.input(1)
    if w is None or not w.is_const or x.dtype != FLOAT32 or w.dtype != FLOAT32 or x.size == 0 or w.size == 0:
        return None
    group = node.attr("group", 1)
    if is_depthwise_2d(x.shape, w.shape, group):
        attrs = dict(node.attrs, source_op="Conv", vw=cpu.vw)  # vw: the blocked mode's register transposes
        return Node("DepthwiseConv", node.inputs, node.outputs, attrs, node.name, PACKED_DOMAIN, 1)
    if w.shape[1] == 1 and w.shape[0] == group:
        return None  # 1-D or 3-D depthwise, or a large window: the direct kernel
    depth = math.prod(w.shape[1:])
    kc = cpu.kc_for(depth)
    pixels = math.prod(node.outputs[0].shape[2:])
    mg = w.shape[0] // group
    direct_gain = p_major_gain(pixels, mg, cpu.pixel_rows(pixels), cpu.nr)  # with the in-place kernel's tiles
    p_major = (
        (
            pixels <= P_MAJOR_PIXELS
            and mg >= P_MAJOR_CHANNELS
            and depth >= P_MAJOR_DEPTH
            and p_major_gain(pixels, mg, cpu.mr, cpu.nr) >= P_MAJOR_GAIN
        )
        or (
            # read in place and stored transposed from registers (_pixel_direct_conv, cpu.transpose_plan)
            transpose_plan(cpu.mr, cpu.vw) is not None
            and group == 1
            and len(w.shape) == 4
            and depth >= P_DIRECT_DEPTH
            and direct_gain >= P_DIRECT_MIN_GAIN
        )
        or (
            # AVX2 (tiles transposed by 8x8 shuffles, gemm_engine.j2): the window convolutions the blocked kernel
            # leaves (too few channels to fill blocks: stems), read in place where deep enough
            cpu.vw == 8
            and transpose_plan(cpu.mr, cpu.vw) is None
            and group == 1
            and len(w.shape) == 4
            and w.shape[2:] != (1, 1)
            and depth >= (P_AVX2_DEPTH_STRIDED if max(node.attr("strides") or [1]) > 1 else P_AVX2_DEPTH)
            and direct_gain >= P_DIRECT_MIN_GAIN
        )
    )
    if p_major:
        packed = pack_conv_weights_p_major(w.data, group, cpu.nr)
    else:
        packed = pack_conv_weights(w.data, group, cpu.mr, kc)
    wp = Value(fresh(w.name, "packed"), FLOAT32, packed.shape, packed)
    attrs = dict(node.attrs)
    attrs.update(source_op="Conv", w_shape=list(w.shape), mr=cpu.mr, nr=cpu.nr, kc=kc, nc=cpu.nc(packed.shape[2]))
    if p_major:
        attrs["p_major"] = 1
    inputs = [x, wp] + node.inputs[2:3]
    return Node("PackedConv", inputs, node.outputs, attrs, node.name, PACKED_DOMAIN, 1)


def _gemm_operands(node: Node, fresh: FreshNames) -> tuple[Value, np.ndarray, Value | None] | None:
    """(A, B as [K, N] with alpha applied, C) of a Gemm/MatMul/MatMulBias the engine can take."""
    if node.op == "Gemm" and node.domain == "":
        a, b, c = node.inputs[0], node.input(1), node.input(2)
        if node.attr("transA", 0) or b is None or not b.is_const:
            return None
        beta = node.attr("beta", 1.0)
        if c is not None and beta != 1.0:
            if not c.is_const:
                return None
            c = Value(
                fresh(c.name, "scaled"),
                c.dtype,
                c.shape,
                (c.data * np.asarray(beta, c.data.dtype)).astype(c.data.dtype),
            )
        mat = b.data.T if node.attr("transB", 0) else b.data
        alpha = node.attr("alpha", 1.0)
        return a, (mat * np.float32(alpha) if alpha != 1.0 else mat), c
    if node.op == "MatMul" and node.domain == "":
        a, b = node.inputs[0], node.inputs[1]
        if not b.is_const or b.rank != 2 or a.rank < 2:
            return None
        return a, b.data, None
    if node.op == "MatMulBias" and node.domain == PACKED_DOMAIN:
        a, b, bias = node.inputs
        return (a, b.data, bias) if b.is_const else None
    return None


def _packed_matmul(node: Node, cpu: CpuTarget, fresh: FreshNames) -> Node | None:
    found = _gemm_operands(node, fresh)
    if found is None:
        return None
    a, b, c = found
    if a.dtype != FLOAT32 or b.dtype != np.float32 or a.size == 0 or b.size == 0:
        return None
    if c is not None and (c.dtype != FLOAT32 or c.rank > 2 or (c.rank == 2 and node.outputs[0].rank != 2)):
        return None
    packed = pack_gemm_weights(np.ascontiguousarray(b), cpu.nr)
    bp = Value(fresh(node.inputs[1].name, "packed"), FLOAT32, packed.shape, packed)
    k = int(b.shape[0])
    attrs = {"n": int(b.shape[1]), "mr": cpu.mr, "kc": cpu.kc_for(k), "nc": cpu.nc(k), "source_op": node.op}
    inputs = [a, bp] + ([c] if c is not None else [])
    return Node("PackedMatMul", inputs, node.outputs, attrs, node.name, PACKED_DOMAIN, 1)


def _runtime_matmul(node: Node, cpu: CpuTarget) -> Node | None:
    a, b = node.inputs
    if b.is_const or a.dtype != FLOAT32 or b.dtype != FLOAT32 or a.rank < 2 or b.rank < 2 or a.size == 0 or b.size == 0:
        return None
    k = a.shape[-1]
    attrs = {"mr": cpu.mr, "nr": cpu.nr, "kc": cpu.kc_for(k), "nc": cpu.nc(k), "source_op": "MatMul"}
    return Node("RuntimeMatMul", [a, b], node.outputs, attrs, node.name, PACKED_DOMAIN, 1)


def _rewrite(node: Node, cpu: CpuTarget, fresh: FreshNames) -> list[Node] | None:
    """The nodes that replace `node`, or None to keep it."""
    if node.op == "Conv" and node.domain == "" and len(node.outputs) == 1:
        blocked = _blocked_conv(node, cpu, fresh)
        if blocked:
            return blocked
        new = _packed_conv(node, cpu, fresh)
        if new is not None and new.op == "PackedConv" and new.attrs.get("p_major"):
            return _pixel_direct_conv(node, new, cpu, fresh) or [new]
        if new is not None and new.op == "PackedConv":
            return _direct_conv(node, new, cpu, fresh) or [new]
        return [new] if new is not None else None
    if node.op in ("Gemm", "MatMul", "MatMulBias"):
        new = _packed_matmul(node, cpu, fresh)
        if new is None and node.op == "MatMul" and node.domain == "":
            new = _runtime_matmul(node, cpu)
        return [new] if new is not None else None
    return None


def pack_weights(graph: Graph, cpu: CpuTarget | None = None) -> Graph:
    cpu = cpu or cpu_target("generic")
    fresh = FreshNames(graph)
    nodes = []
    for node in graph.nodes:
        new = _rewrite(node, cpu, fresh) or [node]
        for n in new:
            for out in n.outputs:
                out.producer = n
        nodes += new
    graph.nodes = nodes
    return eliminate_dead_code(graph)
