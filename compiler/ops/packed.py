"""PackedConv and PackedMatMul (domain "mlcc"): Conv and GEMM whose weights the compiler packed for the
c target's GEMM engine (templates/c/gemm_engine.j2), made by passes/pack_weights.py.

PackedConv(X, Wp[, B]) is Conv with W [M, C/group, k...] stored as Wp [group, panels * MR, K]: per group, the
[M/group, K = C/group * prod(k)] weight matrix cut into panels of MR rows (zero rows past M/group) and
blocks of KC columns; block by block, the panels follow each other, each column-major (MR weights of one k
together), so that one block of the A operand is one contiguous stream. The kernel computes Y[n, g] = Wg @ im2col(X[n, g]) with
im2col packed on the fly into NR-wide strips, 1x1 stride-1 convolutions straight from X's rows. Variants:
`direct` (stride 1, 2-D: X padded, read in place through a table of tap offsets, inputs [X, Wp, B, OFF]);
`p_major` (pixel-major: Wp is W^T in NR-channel strips, tiles of MR pixels stored transposed), with `direct`
reading X in place through OFF and a table PIX of each output pixel's window corner (inputs [X, Wp, B, OFF,
PIX], B possibly absent); `blocked` (with both: X is PadBlocks' channel-blocked [N, C/8, H, W, 8], W^T's rows in
the order (channel block, kh, kw, channel in block), w_shape's C a multiple of 8).

PackedMatMul(A, Bp[, C]) is Y = A @ B (+ C) for A [..., K] and a constant B [K, N] (alpha already folded
in) stored as Bp [strips, K, NR]: B's columns cut into strips of NR, each strip row-major, zero past N. C
broadcasts to [prod(A[:-1]), N].

RuntimeMatMul(A, B) is MatMul of two computed float32 operands A [..., M, K] and B [..., K, N] of rank 2 or
more (batch dims broadcast), on the same kernel: each task packs its block of B into NR-wide strips at run
time. Made for attention's Q @ K^T and P @ V.

All split their work into tasks over output blocks run on the model's thread pool; each worker packs
into its own scratch (sized here, allocated once at create time).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..ir.graph import Node, Value
from .common import broadcast_shapes, broadcast_strides, coalesce, contiguous_strides, need_input
from .conv import as_3d, conv_geometry, conv_reference
from .registry import INTERNAL_DOMAIN, Kernel, OpDef, register

PACKED_DOMAIN = INTERNAL_DOMAIN


def pack_conv_weights(w: np.ndarray, group: int, mr: int, kc: int) -> np.ndarray:
    """W [M, C/group, k...] -> [group, panels * mr, K] holding, per group and per block of kc weight columns,
    the panels of mr rows one after the other, each column-major (see the module docstring)."""
    m = w.shape[0]
    mg, k = m // group, math.prod(w.shape[1:])
    panels = -(-mg // mr)
    rows = np.zeros((group, panels * mr, k), dtype=w.dtype)
    rows[:, :mg] = w.reshape(group, mg, k)
    blocks = [
        rows[:, :, k0 : k0 + kc].reshape(group, panels, mr, -1).transpose(0, 1, 3, 2).reshape(group, -1)
        for k0 in range(0, k, kc)
    ]
    return np.ascontiguousarray(np.concatenate(blocks, axis=1).reshape(group, panels * mr, k))


def unpack_conv_weights(wp: np.ndarray, w_shape: tuple[int, ...], mr: int, kc: int) -> np.ndarray:
    group, rows_, k = wp.shape
    panels, mg = rows_ // mr, w_shape[0] // group
    flat, rows, at = wp.reshape(group, -1), np.empty((group, rows_, k), wp.dtype), 0
    for k0 in range(0, k, kc):
        width = min(kc, k - k0)
        block = flat[:, at : at + rows_ * width].reshape(group, panels, width, mr).transpose(0, 1, 3, 2)
        rows[:, :, k0 : k0 + width] = block.reshape(group, rows_, width)
        at += rows_ * width
    return rows[:, :mg].reshape(w_shape)


def pack_gemm_weights(b: np.ndarray, nr: int) -> np.ndarray:
    """B [K, N] -> [strips, K, nr] (see the module docstring)."""
    k, n = b.shape
    strips = -(-n // nr)
    cols = np.zeros((k, strips * nr), dtype=b.dtype)
    cols[:, :n] = b
    return np.ascontiguousarray(cols.reshape(k, strips, nr).transpose(1, 0, 2))


def unpack_gemm_weights(bp: np.ndarray, n: int) -> np.ndarray:
    strips, k, nr = bp.shape
    return bp.transpose(1, 0, 2).reshape(k, strips * nr)[:, :n]


def pack_conv_weights_p_major(w: np.ndarray, group: int, nr: int) -> np.ndarray:
    """W [M, C/group, k...] -> [group, strips, K * nr]: per group, W^T [K, M/group] in nr-wide strips of
    output channels (pack_gemm_weights' layout), for the pixel-major kernel (conv_pmajor.c.j2)."""
    mg, k = w.shape[0] // group, math.prod(w.shape[1:])
    per_group = [pack_gemm_weights(w.reshape(group, mg, k)[g].T, nr) for g in range(group)]
    return np.ascontiguousarray(np.stack([p.reshape(p.shape[0], -1) for p in per_group]))


def unpack_conv_weights_p_major(wp: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    group, strips, knr = wp.shape
    mg, k = w_shape[0] // group, math.prod(w_shape[1:])
    nr = knr // k
    rows = [unpack_gemm_weights(wp[g].reshape(strips, k, nr), mg).T for g in range(group)]
    return np.concatenate(rows).reshape(w_shape)


def p_major_gain(p: int, mg: int, mr: int, nr: int) -> float:
    """How much more of the engine's work is useful when a convolution's pixels are the tile's rows (MR
    each) and its output channels the vector columns (NR), rather than the other way round, where a map of
    p pixels fills NR-wide strips (a tail of at most NR/2 costs half a strip): 49 pixels use 49 of 64
    columns, but 49 of 56 rows."""
    tail = p % nr
    cols = p - tail + (0 if tail == 0 else nr // 2 if tail <= nr // 2 else nr)
    normal = (p / cols) * (mg / (-(-mg // mr) * mr))
    pixel_major = (p / (-(-p // mr) * mr)) * (mg / (-(-mg // nr) * nr))
    return pixel_major / normal


BLOCK_CHANNELS = 8  # channels per block of a channel-blocked input (PadBlocks): 32 bytes, half a cache line
GEMV_A_BYTES = 16 << 10  # the rows of A one pass keeps in L1


def _gemm_params(m: int, n: int, k: int, node: Node, nr: int, **rest) -> dict:
    """The parameters of templates/c/kernels/gemm_packed.c.j2 for Y[m, n] = A[m, k] @ B: the blocking from
    node's attributes; `rest` sets the B source (pack_b, batch dims), C and the scratch size."""
    params = {
        "ctype": "float",
        "M": m,
        "N": n,
        "K": k,
        "pack_b": False,
        "batch_dims": [],
        "batch_strides": [[], [], []],
        "MR": node.attr("mr"),
        "NR": nr,
        "KC": min(node.attr("kc"), k),
        "NC": _block_cols(node.attr("nc"), n, nr),
        "has_c": False,
        "c_rs": 0,
        "c_cs": 0,
        "threaded": True,
        "scratch_floats": 0,
    }
    params.update(rest)
    if not params["pack_b"] and m <= params["MR"] and m * k * 4 <= GEMV_A_BYTES:
        # a GEMV-like product (a classifier at batch 1): no K blocks, so each strip of packed B streams
        # from memory once, in order, into sums that stay in registers (K blocks would reload the output
        # and jump between strips)
        params["KC"] = k
    return params


def _im2col_params(node: Node, group, kernel, out, begin, strides, dil) -> dict:
    """The template parameters the im2col-packing convolution kernels share (conv_packed, conv_pmajor)."""
    x, w_shape = node.inputs[0], node.attr("w_shape")
    k = math.prod(w_shape[1:])
    kern3, pads3, str3, dil3 = as_3d(kernel, 1), as_3d(begin, 0), as_3d(strides, 1), as_3d(dil, 1)
    return {
        "ctype": "float",
        "N": x.shape[0],
        "C": x.shape[1],
        "M": w_shape[0],
        "group": group,
        "in": as_3d(x.shape[2:], 1),
        "out": as_3d(out, 1),
        "kernel": kern3,
        "pads": pads3,
        "strides": str3,
        "dilations": dil3,
        "has_bias": node.input(2) is not None,
        "K": k,
        "P": math.prod(out),
        "MR": node.attr("mr"),
        "NR": node.attr("nr"),
        "KC": min(node.attr("kc"), k),
        "pointwise": kern3 == [1, 1, 1] and pads3 == [0, 0, 0] and str3 == [1, 1, 1],
        "threaded": True,
    }


B_IN_PLACE_PANELS = 32  # row panels (MR output channels each) of a 1x1 convolution reading B in place, at most


def _block_cols(cpu_nc: int, cols: int, nr: int) -> int:
    """NC: the columns of a block when cutting into the fewest blocks of at most cpu_nc columns, balanced,
    NC a multiple of nr (at run time, runtime_c/mlcc_pool.h mlcc_split may cut finer for threads)."""
    count = -(-cols // cpu_nc)
    per_block = -(-cols // count)
    return -(-per_block // nr) * nr


@register("PackedConv", since=1, domain=PACKED_DOMAIN)
class PackedConv(OpDef):
    def _geometry(self, node: Node):
        x, wp = need_input(node, 0), need_input(node, 1)
        w_shape = tuple(node.attr("w_shape"))
        if wp.rank != 3 or wp.shape[0] != node.attr("group", 1):
            raise ShapeError(f"PackedConv {node.name!r}: packed weights {list(wp.shape)} do not match the group")
        if node.attr("blocked", 0):  # X is PadBlocks' [N, C / 8, H, W, 8]: the convolution of its C channels
            if x.rank != 5 or x.shape[4] != node.attr("blocked"):
                raise ShapeError(f"PackedConv {node.name!r}: a blocked input should be 5-D, not {list(x.shape)}")
            return conv_geometry(node, (x.shape[0], x.shape[1] * x.shape[4]) + x.shape[2:4], w_shape)
        if node.attr("phases", 0):  # X is PadPhases' output: the convolution of the padded input it came from
            s, (hp, wp) = node.attr("phases"), node.attr("padded")
            if x.rank != 4 or x.shape[1] % (s * s) or (x.shape[2] - node.attr("slack_rows", 0)) * s < hp:
                raise ShapeError(f"PackedConv {node.name!r}: {list(x.shape)} are not the phases of a {hp}x{wp} input")
            return conv_geometry(node, (x.shape[0], x.shape[1] // (s * s), hp, wp), w_shape)
        slack = node.attr("slack_rows", 0)
        if slack and (x.rank != 4 or x.shape[2] <= slack):
            raise ShapeError(
                f"PackedConv {node.name!r}: slack_rows {slack} needs a taller 2-D input than {list(x.shape)}"
            )
        return conv_geometry(node, x.shape[:2] + (x.shape[2] - slack,) + x.shape[3:], w_shape)

    def infer(self, node):
        x = node.inputs[0]
        out = self._geometry(node)[2]
        return [(x.dtype, (x.shape[0], node.attr("w_shape")[0]) + out)]

    def reference(self, node, inputs):
        x = inputs[0]
        if node.attr("blocked", 0):  # X and W^T's rows back in channel order
            m, c, kh, kw = node.attr("w_shape")
            w = unpack_conv_weights_p_major(inputs[1], (m, c // BLOCK_CHANNELS, kh, kw, BLOCK_CHANNELS))
            w = w.transpose(0, 1, 4, 2, 3).reshape(m, c, kh, kw)
            x = x.transpose(0, 1, 4, 2, 3).reshape(x.shape[0], c, *x.shape[2:4])
        elif node.attr("p_major", 0):
            w = unpack_conv_weights_p_major(inputs[1], tuple(node.attr("w_shape")))
        else:
            w = unpack_conv_weights(inputs[1], tuple(node.attr("w_shape")), node.attr("mr"), node.attr("kc"))
        b = inputs[2] if len(inputs) > 2 else None
        x = x[:, :, : x.shape[2] - node.attr("slack_rows", 0)]
        if node.attr("phases", 0):  # the padded input back from its phases
            s, (hp, wp) = node.attr("phases"), node.attr("padded")
            n, cs, h2, w2 = x.shape
            x = x.reshape(n, cs // (s * s), s, s, h2, w2).transpose(0, 1, 4, 2, 5, 3).reshape(n, -1, h2 * s, w2 * s)
            x = x[:, :, :hp, :wp]
        return [conv_reference(x, w, b, self._geometry(node))]

    def lower(self, node):
        x, wp, y = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.input(2)
        group, kernel, out, begin, _, strides, dil = self._geometry(node)
        if node.attr("p_major", 0):
            return [self._lower_p_major(node, group, kernel, out, begin, strides, dil)]
        if node.attr("direct", 0):
            return [self._lower_direct(node, group, kernel, out, dil)]
        mr = node.attr("mr")
        panels, k = wp.shape[1] // mr, wp.shape[2]
        kc = node.attr("kc")
        nc = _block_cols(node.attr("nc"), math.prod(out), node.attr("nr"))
        params = _im2col_params(node, group, kernel, out, begin, strides, dil)
        params.update(panels=panels, NC=nc, scratch_floats=min(kc, k) * nc)
        # 1x1: B read in place; it saves most where few row panels share each packed block (one convolution +
        # Relu alone, Zen 4, 1 thread, time vs packing: 64->16 and 128->16 at 55x55 0.82, 0.79; 16->64 0.95,
        # 64->64 at 56x56 0.93, 32->192 at 28x28 0.96, 16->96 at 112x112 0.97; 64->256 at 55x55 1.00, 96->576 at
        # 14x14 1.00, at 28x28 1.01). Also where the strip's rows share a few L1 sets (row strides of a multiple
        # of 1 KiB: 112x112, 80x80, 64x64, 32x32 maps), which it once packed for: their evictions cost L2 hits,
        # the packing more (32->16 at 112x112 0.165 -> 0.130 ms, 96->24 0.695 -> 0.550, 64->32 at 80x80 0.287 ->
        # 0.246, 64->32 at 64x64 (64 rows in one set) 0.203 -> 0.169; 64->256 at 64x64, 32->192 at 112x112 equal)
        params["b_in_place"] = params["pointwise"] and panels <= B_IN_PLACE_PANELS
        if params["b_in_place"]:  # the scratch holds the partial last strip only
            params["scratch_floats"] = min(kc, k) * node.attr("nr")
        # the bias added in the micro-kernel's registers (ops/fused.py in_register_clamp for a Relu or Clip)
        params["clamp"] = ("-INFINITY", "INFINITY") if b is not None else None
        inputs = [x, wp] + ([b] if b is not None else [])
        names = ["X", "W"] + (["B"] if b is not None else []) + ["Y"]
        return [Kernel("conv_packed", "conv", inputs, [y], params, names)]

    def _lower_p_major(self, node, group, kernel, out, begin, strides, dil) -> Kernel:
        """Pixel-major: tiles of MR pixels x NR output channels (ops/packed.py p_major_gain), the tile added
        into Y transposed (conv_pmajor.c.j2). The patch matrix is packed per K block as MR-pixel panels, or,
        with `direct`, read in place from the padded X through the OFF and PIX tables (inputs 3 and 4)."""
        x, wp, y = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.input(2)
        mr, nr = node.attr("mr"), node.attr("nr")
        direct = bool(node.attr("direct", 0))
        params = _im2col_params(node, group, kernel, out, begin, strides, dil)
        if node.attr("blocked", 0):  # the image's blocks one after the other: as planes of C channels
            params.update(C=x.shape[1] * x.shape[4], **{"in": [1, x.shape[2], x.shape[3]]})
        p_panels = -(-params["P"] // mr)
        channels = -(-params["M"] // group // nr) * nr  # of a group, in whole strips
        # scratch: with `direct` none; else a K block of the patch matrix in panels, and the tiles of
        # every strip and panel
        scratch = 0 if direct else (params["KC"] + channels) * p_panels * mr
        params.update(strips=wp.shape[1], p_panels=p_panels, direct=direct, scratch_floats=scratch)
        params["TAIL"] = node.attr("tail", 0) if direct else 0  # the last tile's rows (cpu.py pixel_tail)
        if direct:  # a Relu or Clip after it applied in registers (ops/fused.py in_register_clamp)
            params["clamp"] = None
        inputs, names = [x, wp], ["X", "W"]
        if direct:
            off, pix = need_input(node, 3), need_input(node, 4)
            if off.shape != (params["K"],) or pix.shape != (p_panels * mr,) or not (off.is_const and pix.is_const):
                raise ShapeError(
                    f"PackedConv {node.name!r}: the offset tables {list(off.shape)}, {list(pix.shape)} do not fit"
                )
            inputs, names = inputs + [off, pix], names + ["OFF", "PIX"]
        if b is not None:
            inputs, names = inputs + [b], names + ["B"]
        return Kernel("conv_pmajor", "conv", inputs, [y], params, names + ["Y"])

    def _lower_direct(self, node, group, kernel, out, dil) -> Kernel:
        """Stride-1, unpadded 2-D convolution (passes/pack_weights.py put the padding in a Pad before it):
        over a virtual output grid as wide as the input row, B row k = (c, kh, kw) of the strip at virtual
        column q is X[c] at q + kh * dh * IW + kw * dw, read in place (templates/c/kernels/conv_direct.c.j2)."""
        x, wp, y = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.input(2)
        mr, nr, kc = node.attr("mr"), node.attr("nr"), node.attr("kc")
        ih, iw = x.shape[2:]
        oh, ow = out
        virtual = oh * iw  # virtual columns: every output row padded to the input's width
        k = wp.shape[2]
        sg = node.attr("strip_group", 1)
        params = {
            "ctype": "float",
            "N": x.shape[0],
            "C": x.shape[1],
            "M": node.attr("w_shape")[0],
            "group": group,
            "IH": ih,
            "IW": iw,
            "OH": oh,
            "OW": ow,
            "KH": kernel[0],
            "KW": kernel[1],
            "DH": dil[0],
            "DW": dil[1],
            "has_bias": b is not None,
            "K": k,
            "V": virtual,
            "panels": wp.shape[1] // mr,
            "MR": mr,
            "NR": nr,
            "KC": min(kc, k),
            "NC": _block_cols(node.attr("nc"), virtual, nr),
            "threaded": True,
            "SG": sg,
            "scratch_floats": sg * wp.shape[1] * nr,  # a tile per row panel and strip of a group
        }
        off = need_input(node, 3)
        if off.shape != (k,) or not off.is_const:
            raise ShapeError(f"PackedConv {node.name!r}: the offset table {list(off.shape)} should hold {k} constants")
        inputs = [x, wp, off] + ([b] if b is not None else [])
        names = ["X", "W", "OFF"] + (["B"] if b is not None else []) + ["Y"]
        return Kernel("conv_direct", "conv", inputs, [y], params, names)


@register("PackedMatMul", since=1, domain=PACKED_DOMAIN)
class PackedMatMul(OpDef):
    def _dims(self, node: Node) -> tuple[int, int, int]:
        a, bp = need_input(node, 0), need_input(node, 1)
        n = node.attr("n")
        if a.rank < 1 or bp.rank != 3 or bp.shape[1] != a.shape[-1] or bp.shape[0] * bp.shape[2] < n:
            raise ShapeError(f"PackedMatMul {node.name!r}: A {list(a.shape)} and packed B {list(bp.shape)} disagree")
        return math.prod(a.shape[:-1]), n, a.shape[-1]

    def infer(self, node):
        a = node.inputs[0]
        m, n, _ = self._dims(node)
        c = node.input(2)
        padded = (1,) * (2 - c.rank) + c.shape if c is not None and c.rank <= 2 else None
        if c is not None and (padded is None or any(d not in (1, t) for d, t in zip(padded, (m, n)))):
            raise ShapeError(f"PackedMatMul {node.name!r}: C {list(c.shape)} must broadcast to {[m, n]}")
        return [(a.dtype, a.shape[:-1] + (n,))]

    def reference(self, node, inputs):
        a, bp = inputs[0], inputs[1]
        m, n, k = self._dims(node)
        y = a.reshape(m, k).astype(np.float64) @ unpack_gemm_weights(bp, n).astype(np.float64)
        if len(inputs) > 2 and inputs[2] is not None:
            y = y + inputs[2]
        return [y.astype(a.dtype).reshape(a.shape[:-1] + (n,))]

    def lower(self, node):
        a, bp, y = node.inputs[0], node.inputs[1], node.outputs[0]
        c = node.input(2)
        m, n, k = self._dims(node)
        c_strides = broadcast_strides(c.shape, (m, n)) if c is not None else [0, 0]
        params = _gemm_params(m, n, k, node, bp.shape[2], has_c=c is not None, c_rs=c_strides[0], c_cs=c_strides[1])
        inputs = [a, bp] + ([c] if c is not None else [])
        names = ["A", "B"] + (["C"] if c is not None else []) + ["Y"]
        name = str(node.attr("source_op", "gemm")).lower()  # the kernel keeps the name of the op it runs
        return [Kernel("gemm_packed", name, inputs, [y], params, names)]


@register("RuntimeMatMul", since=1, domain=PACKED_DOMAIN)
class RuntimeMatMul(OpDef):
    def _shapes(self, node: Node):
        a, b = need_input(node, 0), need_input(node, 1)
        if a.rank < 2 or b.rank < 2 or a.shape[-1] != b.shape[-2]:
            raise ShapeError(f"RuntimeMatMul {node.name!r}: A {list(a.shape)} and B {list(b.shape)} disagree")
        batch = broadcast_shapes(node, a.shape[:-2], b.shape[:-2])
        return batch, a.shape[-2], a.shape[-1], b.shape[-1]

    def infer(self, node):
        batch, m, _, n = self._shapes(node)
        return [(node.inputs[0].dtype, batch + (m, n))]

    def reference(self, node, inputs):
        y = np.matmul(inputs[0].astype(np.float64), inputs[1].astype(np.float64))
        return [y.astype(inputs[0].dtype)]

    def lower(self, node):
        a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
        batch, m, k, n = self._shapes(node)
        strides = [
            [s * m * n for s in contiguous_strides(batch)],
            [s * m * k for s in broadcast_strides(a.shape[:-2], batch)],
            [s * k * n for s in broadcast_strides(b.shape[:-2], batch)],
        ]
        dims, strides = coalesce(batch, strides)
        params = _gemm_params(m, n, k, node, node.attr("nr"), pack_b=True, batch_dims=dims, batch_strides=strides)
        params["scratch_floats"] = params["KC"] * params["NC"]  # a block of B
        return [Kernel("gemm_packed", "matmul", [a, b], [y], params, ["A", "B", "Y"])]


def _plane_copy_params(x: Value, y: Value, pads: list[int]) -> dict:
    """The parameters of PadPlanes' and PadPhases' kernels: planes of x [N, C, IH, IW] copied into y's planes
    [.., OH, OW] at row `top`, column `left`; tasks of whole planes, at least 64 KiB of output each."""
    top, left = pads[:2]
    return {
        "planes": x.shape[0] * x.shape[1],
        "IH": x.shape[2],
        "IW": x.shape[3],
        "OH": y.shape[2],
        "OW": y.shape[3],
        "top": top,
        "left": left,
        "per_task": max(1, 16384 // (y.shape[2] * y.shape[3])),
        "threaded": True,
        "scratch_floats": 0,
    }


@register("PadPlanes", since=1, domain=PACKED_DOMAIN)
class PadPlanes(OpDef):
    """Zero padding of the last two axes of a 4-D float32 tensor (attribute pads = [top, left, bottom, right],
    all >= 0): the padded input of a direct convolution (passes/pack_weights.py), row copies and zero fills
    instead of Pad's per-element index arithmetic."""

    def infer(self, node):
        x = need_input(node, 0)
        top, left, bottom, right = node.attr("pads")
        if x.rank != 4 or min(top, left, bottom, right) < 0:
            raise ShapeError(f"PadPlanes {node.name!r}: needs a 4-D input and pads >= 0")
        return [(x.dtype, x.shape[:2] + (x.shape[2] + top + bottom, x.shape[3] + left + right))]

    def reference(self, node, inputs):
        top, left, bottom, right = node.attr("pads")
        return [np.pad(inputs[0], [(0, 0), (0, 0), (top, bottom), (left, right)])]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        return [Kernel("pad_planes", "pad", [x], [y], _plane_copy_params(x, y, node.attr("pads")), ["X", "Y"])]


@register("PadPhases", since=1, domain=PACKED_DOMAIN)
class PadPhases(OpDef):
    """Zero padding (pads = [top, left, bottom, right], >= 0) and phase split at `stride` s of a 4-D float32
    tensor: [N, C, H, W] -> [N, C * s * s, ceil(Hp / s) + slack, ceil(Wp / s)], channel (c * s + pr) * s + pc
    holding padded rows s * i + pr and columns s * j + pc (zeros past the padded plane and in the `slack`
    rows): the input of a strided direct convolution (passes/pack_weights.py _direct_conv), which reads each
    phase as a stride-1 plane."""

    def infer(self, node):
        x = need_input(node, 0)
        top, left, bottom, right = node.attr("pads")
        s, slack = node.attr("stride"), node.attr("slack", 0)
        if x.rank != 4 or min(top, left, bottom, right) < 0 or s < 1 or slack < 0:
            raise ShapeError(f"PadPhases {node.name!r}: needs a 4-D input, pads >= 0 and a stride >= 1")
        hp, wp = x.shape[2] + top + bottom, x.shape[3] + left + right
        return [(x.dtype, (x.shape[0], x.shape[1] * s * s, -(-hp // s) + slack, -(-wp // s)))]

    def reference(self, node, inputs):
        top, left, bottom, right = node.attr("pads")
        s, slack = node.attr("stride"), node.attr("slack", 0)
        x = np.pad(inputs[0], [(0, 0), (0, 0), (top, bottom), (left, right)])
        n, c, hp, wp = x.shape
        h2, w2 = -(-hp // s), -(-wp // s)
        x = np.pad(x, [(0, 0), (0, 0), (0, h2 * s - hp + slack * s), (0, w2 * s - wp)])
        phases = x.reshape(n, c, h2 + slack, s, w2, s).transpose(0, 1, 3, 5, 2, 4)
        return [np.ascontiguousarray(phases.reshape(n, c * s * s, h2 + slack, w2))]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        left = node.attr("pads")[1]
        s, iw, ow = node.attr("stride"), x.shape[3], y.shape[3]
        # per column phase pc, the phase columns [lo, hi) that hold input columns s * j + pc - left
        lo = [max(0, min(ow, -(-(left - pc) // s))) for pc in range(s)]
        hi = [max(lo[pc], min(ow, (iw - 1 + left - pc) // s + 1)) for pc in range(s)]
        params = {**_plane_copy_params(x, y, node.attr("pads")), "S": s, "lo": lo, "hi": hi}
        return [Kernel("pad_phases", "pad", [x], [y], params, ["X", "Y"])]


@register("PadBlocks", since=1, domain=PACKED_DOMAIN)
class PadBlocks(OpDef):
    """X [N, C, H, W] float32 -> Y [N, ceil(C / 8), H + top + bottom, W + left + right, 8]: zero padded and
    channel-blocked (the 8 channels of a block side by side per pixel, zero past C), the input of a
    blocked pixel-major convolution (passes/pack_weights.py), which then reads the window of one input
    pixel's channels from one place rather than from 8 planes (attribute pads = [top, left, bottom, right])."""

    def infer(self, node):
        x = need_input(node, 0)
        top, left, bottom, right = node.attr("pads")
        if x.rank != 4 or min(top, left, bottom, right) < 0:
            raise ShapeError(f"PadBlocks {node.name!r}: needs a 4-D input and pads >= 0")
        blocks = -(-x.shape[1] // BLOCK_CHANNELS)
        shape = (x.shape[0], blocks, x.shape[2] + top + bottom, x.shape[3] + left + right, BLOCK_CHANNELS)
        return [(x.dtype, shape)]

    def reference(self, node, inputs):
        top, left, bottom, right = node.attr("pads")
        x = inputs[0]
        n, c, h, w = x.shape
        blocks = -(-c // BLOCK_CHANNELS)
        xp = np.pad(x, [(0, 0), (0, blocks * BLOCK_CHANNELS - c), (top, bottom), (left, right)])
        return [np.ascontiguousarray(xp.reshape(n, blocks, BLOCK_CHANNELS, *xp.shape[2:]).transpose(0, 1, 3, 4, 2))]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        top, left, _, _ = node.attr("pads")
        n, blocks, oh, ow, cb = y.shape
        params = {
            "N": n,
            "C": x.shape[1],
            "blocks": blocks,
            "CB": cb,
            "IH": x.shape[2],
            "IW": x.shape[3],
            "OH": oh,
            "OW": ow,
            "top": top,
            "left": left,
            "per_task": max(1, 4096 // (oh * ow)),  # blocks per task: at least 128 KiB of output
            "threaded": True,
            "scratch_floats": 0,
        }
        return [Kernel("pad_blocks", "pad", [x], [y], params, ["X", "Y"])]
