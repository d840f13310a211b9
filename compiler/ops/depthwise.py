"""DepthwiseConv (domain "mlcc"): a 2-D Conv with one input channel per group (C = group, M = group x
multiplier), made by passes/pack_weights.py for the c target. Same inputs, attributes and numbers as the
Conv; its kernel (templates/c/kernels/conv_dw.c.j2) computes each output row with every tap of the window
in one pass: the row's interior as one vectorisable loop (unit-stride or strided loads, all taps known at
compile time), the padded edge columns apart, rows above and below the input read from a zero row; or,
for stride 1 and short rows (small maps), the plane copied into a zero-bordered stack buffer and computed as
one loop over a grid as wide as the padded row; or, for stride 1 and small maps (at most BLOCK_PIXELS outputs),
in blocks of 16 channels copied pixel-major, each output pixel of the block a vector multiply-add per tap
(with 16-float vectors, AVX-512, also maps of up to BLOCK_PIXELS_V16 outputs and any stride, the copies
in and out register transposes of 16 pixels x 16 channels);
or, for column stride 2 or more and rows of at least PHASE_MIN_ROW outputs, each input row split once into
its column phases (a row of stride-2 loads becomes two unit-stride rows), the output row computed from
them into a stack row and stored with its epilogue in one pass;
or, with 8- or 16-float vectors outside the blocked mode, for column stride 1, or 2 with rows of at least
PHASE_MIN_ROW outputs (vector rows), each input row copied into a ring on the stack KW times, shifted (or
gathered at stride 2) so that every tap is whole aligned vector loads, VR output rows at a time with their
accumulators (and a Relu or Clip) in registers.
The fused epilogue is applied to each finished row (plane, block).
Tasks are blocks of output channel planes."""

from __future__ import annotations

import math

from ..cpu import transpose_plan
from ..errors import ShapeError
from ..ir.graph import Node
from .common import need_input
from .conv import Conv
from .packed import PACKED_DOMAIN
from .registry import Kernel, register

MAX_TAPS = 64  # larger windows keep the direct kernel (the row loop is unrolled over the taps)
TASK_OUTPUTS = 4096  # outputs per task, at least: small planes are grouped
SHORT_ROW = 28  # stride-1 output rows this short or shorter: the whole plane as one loop (plane mode)
PLANE_FLOATS = 4096  # the padded plane of plane mode, on the stack, at most
BLOCK_PIXELS = 64  # stride-1 output maps this small or smaller: blocks of 16 channels (blocked mode)
BLOCK_FLOATS = 8192  # the input window of a block of blocked mode, on the stack, at most
# with 16-float vectors the blocked mode's copies are register transposes, and it takes larger maps and
# strides where its 16-channel blocks waste at most a fifth of their lanes; mobilenet_v2's depthwise 3x3
# convolutions alone (1 thread, Zen 4, blocked / the mode before): 960 channels at 7x7 0.040 / 0.064 ms
# (element-by-element copies), 576 at 14x14 0.067 / 0.078 (plane mode), 576 at 14x14 stride 2 0.042 / 0.058
# (rows); 192 at 28x28 (a window of 57 KiB) was slower, 0.090 / 0.084
BLOCK_PIXELS_V16 = 256
# column phases: mobilenet_v2's stride-2 3x3 depthwise convolutions (1 thread, Zen 3) 96 channels to 56x56
# 0.465 -> 0.351 ms, 144 to 28x28 0.172 -> 0.140; on rows of 14 and 7 they were slower (0.057 -> 0.070,
# 0.049 -> 0.091): the strided row loop stays there
PHASE_MIN_ROW = 16
# vector rows: with 4-float vectors (generic) mobilenet_v2's 144 channels at 56x56 were slower (0.302 -> 0.312
# ms), with 8 (AVX2) faster (0.210 -> 0.184)
VROWS_MIN_VW = 8
VROWS_FLOATS = 8192  # the ring of vector-rows mode, on the stack, at most


def is_depthwise_2d(x_shape: tuple[int, ...], w_shape: tuple[int, ...], group: int) -> bool:
    return len(x_shape) == 4 and w_shape[1] == 1 and x_shape[1] == group and math.prod(w_shape[2:]) <= MAX_TAPS


@register("DepthwiseConv", since=1, domain=PACKED_DOMAIN)
class DepthwiseConv(Conv):
    """Conv's shapes, checks and reference; its own kernel."""

    def _geometry(self, node: Node):
        x, w = need_input(node, 0), need_input(node, 1)
        geometry = super()._geometry(node)
        if not is_depthwise_2d(x.shape, w.shape, geometry[0]):
            raise ShapeError(f"DepthwiseConv {node.name!r}: X {list(x.shape)} and W {list(w.shape)} are not depthwise")
        return geometry

    def lower(self, node):
        x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.input(2)
        group, (kh, kw), (oh, ow), (ph, pw), _, (sh, sw), (dh, dw) = self._geometry(node)
        ih, iw = x.shape[2:]
        # interior columns: every tap of the window inside the input row
        ow_lo = min(ow, -(-pw // sw))
        ow_hi = max(ow_lo, min(ow, (iw - 1 - (kw - 1) * dw + pw) // sw + 1))
        # plane mode: short rows vectorise badly one by one; the plane padded into a stack buffer (IHP x IWP)
        # is one loop over a virtual grid as wide as the padded row (the last (KW-1)*DW columns dropped)
        ihp, iwp = oh + (kh - 1) * dh, ow + (kw - 1) * dw
        plane = sh == sw == 1 and ow <= SHORT_ROW and ihp * iwp + (kw - 1) * dw <= PLANE_FLOATS
        # blocked mode: small maps in blocks of 16 channels, pixel-major (the window's input for all 16
        # channels on the stack: at most BLOCK_FLOATS)
        xh, xw = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
        m, v16 = w.shape[0], node.attr("vw", 0) == 16
        lanes_used = 5 * m >= 4 * (-(-m // 16) * 16)
        blocked = (
            m == group
            and xh * xw * 16 <= BLOCK_FLOATS
            and ((sh == sw == 1 and oh * ow <= BLOCK_PIXELS) or (v16 and lanes_used and oh * ow <= BLOCK_PIXELS_V16))
        )
        # with 16-float vectors (AVX-512) the blocked mode's copies are register transposes of 16 pixels x 16
        # channels, each input pixel stored at its place in the window (every one of them inside it)
        inside = min(ph, pw) >= 0 and ih + ph <= xh and iw + pw <= xw
        shuffles = None
        if blocked and inside and v16:
            steps, runs = transpose_plan(16, 16)
            shuffles = [[[st.dst, st.a, st.b, list(st.lanes)] for st in steps], [list(r) for r in runs]]
        # vector rows: column stride 1 (or 2, rows of 16 or more: mobilenet_v2's 144 channels 56x56 -> 28x28
        # 0.110 -> 0.076 ms, 96 112x112 -> 56x56 0.221 -> 0.196; rows of 14, 192 channels, 0.030 -> 0.034) on a
        # vector ISA, the rows in use copied into a zero-bordered ring
        vw = node.attr("vw", 0)
        # (KW shifted copies of each row: output column 0's taps at column lp of each, lp a whole vector)
        lp = -(-max(0, (kw - 1) * dw - pw) // vw) * vw if vw else 0
        nb = -(-ow // vw) if vw else 0
        rw = -(-max(lp + pw + iw if sw == 1 else 0, lp + nb * vw) // 16) * 16 if vw else 0
        # output rows at a time: at least 4 vector accumulators in flight (rows of 1 or 2 vectors: 4 or 2 rows);
        # the ring's slots hold the input rows of this block and of the block after (fetched a block early)
        vr = max(1, min(oh, 4 // max(1, min(nb, 4))))
        slots = ((vr - 1) * sh + (kh - 1) * dh + 1) + vr * sh
        strides_ok = sw == 1 or (sw == 2 and ow >= PHASE_MIN_ROW)
        vrows = vw >= VROWS_MIN_VW and strides_ok and not blocked and (slots + 1) * kw * rw <= VROWS_FLOATS
        plane = plane and not vrows
        # phase mode: column stride 2 or more (no dilation), each input row split into its column phases
        phases = not plane and not blocked and sw > 1 and dh == dw == 1 and ow >= PHASE_MIN_ROW
        pl = ow + (kw - 1) // sw  # a phase row's length: every output's taps
        params = {
            "ctype": "float",
            "N": x.shape[0],
            "C": x.shape[1],
            "M": w.shape[0],
            "mult": w.shape[0] // group,
            "IH": ih,
            "IW": iw,
            "OH": oh,
            "OW": ow,
            "KH": kh,
            "KW": kw,
            "PH": ph,
            "PW": pw,
            "SH": sh,
            "SW": sw,
            "DH": dh,
            "DW": dw,
            "ow_lo": ow_lo,
            "ow_hi": ow_hi,
            "has_bias": b is not None,
            "plane": plane,
            "blocked": blocked,
            "shuffles": shuffles,
            "phases": phases,
            "vrows": vrows,
            "VW": vw,
            "LP": lp,
            "RW": rw,
            "VR": vr,
            "NS": slots,
            "PL": pl,
            "FC": max(0, min(iw, sw * pl - pw)),  # the input columns any window reads
            "IHP": ihp,
            "IWP": iwp,
            "planes_per_task": max(1, TASK_OUTPUTS // max(1, oh * ow)),
            "threaded": True,
            **({"clamp": None} if vrows else {}),  # a Relu or Clip epilogue in registers (ops/fused.py)
            "scratch_floats": 0,
        }
        inputs = [x, w] + ([b] if b is not None else [])
        names = ["X", "W"] + (["B"] if b is not None else []) + ["Y"]
        return [Kernel("conv_dw", "conv", inputs, [y], params, names)]
