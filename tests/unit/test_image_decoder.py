"""ImageDecoder (compiler/ops/image.py, runtime_c/mlcc_image.h, mlcc_jpeg.h) against Pillow, the ONNX reference:
images Pillow writes (and some written here: interlaced and explicitly filtered PNGs, top-down BMPs, plain
PNMs) decoded by a compiled model and compared with what Pillow decodes, byte for byte.

One model per pixel format, compiled once: its input is a fixed-size buffer and each image is zero-padded into
it (every decoder stops at its image's end), so the cases need no compile of their own."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from onnx import TensorProto, helper

import mlcc.backend
from mlcc.errors import MlccError
from mlcc.ops.image import MAX_SIDE

PIL = pytest.importorskip("PIL.Image")  # the test extra installs Pillow; it is the ONNX reference

BUFFER = 1 << 18
FORMATS = ("RGB", "BGR", "Grayscale")


@pytest.fixture(scope="module")
def decoders():
    reps = {}
    for fmt in FORMATS:
        node = helper.make_node("ImageDecoder", ["data"], ["image"], pixel_format=fmt)
        graph = helper.make_graph(
            [node],
            "decode",
            [helper.make_tensor_value_info("data", TensorProto.UINT8, [BUFFER])],
            [helper.make_tensor_value_info("image", TensorProto.UINT8, None)],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
        reps[fmt] = mlcc.backend.prepare(model, "CPU")
    return reps


def decode(decoders, encoded: bytes, fmt: str) -> np.ndarray:
    assert len(encoded) <= BUFFER
    buf = np.zeros(BUFFER, np.uint8)
    buf[: len(encoded)] = np.frombuffer(encoded, np.uint8)
    return decoders[fmt].run([buf])[0]


def reference(encoded: bytes, fmt: str) -> np.ndarray:
    """The ONNX reference's result, with palette, gray and alpha images taken to RGB first (the reference
    returns them in their own mode; the operator's output is RGB, BGR or one gray channel)."""
    img = PIL.open(io.BytesIO(encoded))
    if fmt == "Grayscale":
        return np.array(img.convert("L"))[:, :, None]
    rgb = np.array(img.convert("RGB"))
    return rgb[:, :, ::-1] if fmt == "BGR" else rgb


def check(decoders, encoded: bytes, formats=FORMATS) -> None:
    for fmt in formats:
        got, want = decode(decoders, encoded, fmt), reference(encoded, fmt)
        assert got.shape == want.shape, fmt
        mismatched = int(np.count_nonzero(got != want))
        assert mismatched == 0, f"{fmt}: {mismatched} of {want.size} bytes differ from Pillow's"


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients with blocks of noise: both the DCT's low and high frequencies, all colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)], -1)
    noise = rng.integers(0, 256, (h, w, 3))
    img = np.where(((x // 5 + y // 3) % 3 == 0)[:, :, None], noise, img)
    return img.astype(np.uint8)


def save(img: np.ndarray | object, fmt: str, mode: str | None = None, **options) -> bytes:
    if isinstance(img, np.ndarray):
        img = PIL.fromarray(img)
    if mode is not None:
        img = img.convert(mode)
    with io.BytesIO() as f:
        img.save(f, format=fmt, **options)
        return f.getvalue()


@pytest.mark.parametrize("size", [(32, 32), (33, 17), (1, 1), (7, 300), (64, 48), (255, 9)])
@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
def test_jpeg_matches_pillow(decoders, size, subsampling):
    check(decoders, save(picture(*size), "JPEG", quality=80, subsampling=subsampling))


@pytest.mark.parametrize(
    "options",
    [{"quality": 100}, {"quality": 5}, {"optimize": True}, {"restart_marker_blocks": 3}, {"restart_marker_rows": 1}],
)
def test_jpeg_variants_match_pillow(decoders, options):
    check(decoders, save(picture(40, 57, seed=1), "JPEG", **options))


def test_grayscale_jpeg_matches_pillow(decoders):
    check(decoders, save(picture(31, 45, seed=2), "JPEG", mode="L", quality=90))


def test_progressive_jpeg_is_refused_with_a_status(decoders):
    with pytest.raises(MlccError, match="cannot be used"):
        decode(decoders, save(picture(16, 16), "JPEG", progressive=True), "RGB")


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA"])
@pytest.mark.parametrize("level", [0, 6])  # stored blocks; dynamic Huffman codes
def test_png_matches_pillow(decoders, mode, level):
    img = PIL.fromarray(picture(21, 35, seed=3))
    if mode == "P":
        img = img.quantize(50)
    check(decoders, save(img, "PNG", mode=None if mode == "P" else mode, compress_level=level))


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def _filtered(rows: np.ndarray, bpp: int, kinds) -> bytes:
    """PNG rows (2-D uint8, packed samples) each filtered with the next kind of `kinds`."""
    out, prev = bytearray(), np.zeros(rows.shape[1], np.int32)
    for i, row in enumerate(rows.astype(np.int32)):
        kind = kinds[i % len(kinds)]
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        if kind == 0:
            pred = np.zeros_like(row)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = prev
        elif kind == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        out += bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes()
        prev = row
    return bytes(out)


def _png(pixels: np.ndarray, color_type: int, interlace: bool, kinds=(0, 1, 2, 3, 4)) -> bytes:
    """A PNG of 8-bit samples (H x W x channels) written here: every filter type in turn, optionally Adam7."""
    h, w, c = pixels.shape
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(
            _filtered(pixels[y0::dy, x0::dx].reshape(-1, len(range(x0, w, dx)) * c), c, kinds)
            for x0, y0, dx, dy in passes
            if x0 < w and y0 < h
        )
    else:
        raw = _filtered(pixels.reshape(h, w * c), c, kinds)
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, int(interlace))
    idat = zlib.compress(raw, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat[:40])
        + _chunk(b"IDAT", idat[40:])
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("size", [(13, 11), (1, 1), (3, 9)])
def test_png_filters_and_interlacing_match_pillow(decoders, interlace, size):
    pixels = picture(*size, seed=4)
    check(decoders, _png(pixels, 2, interlace))
    check(decoders, _png(pixels[:, :, :1], 0, interlace), ["RGB"])


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA"])
def test_bmp_matches_pillow(decoders, mode):
    img = PIL.fromarray(picture(19, 23, seed=5))
    check(decoders, save(img.quantize(16) if mode == "P" else img, "BMP", mode=None if mode == "P" else mode))


def test_top_down_bmp_matches_pillow(decoders):
    bottom_up = bytearray(save(picture(6, 5, seed=6), "BMP"))
    offset, height = struct.unpack_from("<I", bottom_up, 10)[0], struct.unpack_from("<i", bottom_up, 22)[0]
    stride = (5 * 3 + 3) // 4 * 4
    rows = [bottom_up[offset + i * stride : offset + (i + 1) * stride] for i in range(height)]
    top_down = bottom_up[:offset] + b"".join(reversed(rows))
    struct.pack_into("<i", top_down, 22, -height)
    check(decoders, bytes(top_down))


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA"])
@pytest.mark.parametrize("compression", [None, "packbits"])
def test_tiff_matches_pillow(decoders, mode, compression):
    img = PIL.fromarray(picture(17, 29, seed=7))
    img = img.quantize(30) if mode == "P" else img.convert(mode)
    check(decoders, save(img, "TIFF", compression=compression))


def test_tiff_in_several_strips_matches_pillow(decoders):
    encoded = save(picture(150, 200, seed=8), "TIFF")  # Pillow cuts strips of at most 64 KiB
    check(decoders, encoded)


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_pnm_matches_pillow(decoders, mode):
    check(decoders, save(picture(9, 14, seed=9), "PPM", mode=mode))


@pytest.mark.parametrize(
    "text",
    [
        b"P1\n# a comment\n3 2\n1 0 1\n0 1 0\n",
        b"P1\n3 2\n101010\n",
        b"P2\n2 2\n255\n0 64\n128 255\n",
        b"P3\n2 1\n255\n255 0 0  0 0 255\n",
        b"P6 1 1 255\n\x10\x20\x30",
    ],
)
def test_plain_pnm_matches_pillow(decoders, text):
    check(decoders, text)


@pytest.mark.parametrize(
    "fmt, options", [("WEBP", {}), ("JPEG2000", {}), ("TIFF", {"compression": "tiff_lzw"}), ("GIF", {})]
)
def test_unsupported_streams_fail_the_run_with_a_status(decoders, fmt, options):
    with pytest.raises(MlccError, match=r"status 10"):
        decode(decoders, save(picture(8, 8), fmt, **options), "RGB")


def test_an_image_beyond_the_bound_fails_the_run(decoders):
    wide = _png(np.zeros((1, MAX_SIDE + 1, 1), np.uint8), 0, False, kinds=(0,))
    with pytest.raises(MlccError, match="larger than the bound"):
        decode(decoders, wide, "RGB")
    edge = _png(np.full((1, MAX_SIDE, 1), 7, np.uint8), 0, False, kinds=(0,))
    assert np.array_equal(decode(decoders, edge, "Grayscale"), np.full((1, MAX_SIDE, 1), 7, np.uint8))


def test_corrupt_streams_fail_cleanly_or_decode(decoders):
    """Truncated and bit-flipped images of every format: the run either fails with a status or returns an
    image within the bound; it never crashes or reads out of bounds (the sanitizer suite runs this too)."""
    rng = np.random.default_rng(10)
    samples = [
        save(picture(20, 30, seed=11), "JPEG"),
        save(picture(20, 30, seed=12), "PNG"),
        save(picture(20, 30, seed=13), "BMP"),
        save(picture(20, 30, seed=14), "TIFF", compression="packbits"),
        save(picture(20, 30, seed=15), "PPM"),
    ]
    outcomes = {"failed": 0, "decoded": 0}
    for sample in samples:
        for trial in range(12):
            data = bytearray(sample[: rng.integers(1, len(sample))] if trial % 3 == 0 else sample)
            for _ in range(int(rng.integers(1, 6))):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
            try:
                out = decode(decoders, bytes(data), "RGB")
            except MlccError as err:
                assert "status 10" in str(err)
                outcomes["failed"] += 1
            else:
                assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] <= MAX_SIDE and out.shape[1] <= MAX_SIDE
                outcomes["decoded"] += 1
    assert outcomes["failed"] > 0 and outcomes["decoded"] > 0, outcomes


def test_output_shape_reports_height_and_width(decoders):
    """The output's info holds the bound; the run reports both data-dependent extents (output_shape)."""
    out = decode(decoders, save(picture(3, 70), "PNG"), "RGB")
    assert out.shape == (3, 70, 3)
    info = decoders["RGB"]._model.outputs[0]
    assert info.shape == (MAX_SIDE, MAX_SIDE, 3) and info.dynamic_axis == 0
