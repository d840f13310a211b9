"""ImageDecoder (compiler/ops/image.py, runtime_c/mlcc_image.h, mlcc_jpeg.h, mlcc_webp.h, mlcc_vp8l.h,
mlcc_jpeg2k.h, mlcc_gif.h) against Pillow, the ONNX reference: images Pillow writes (and some written here: interlaced and explicitly filtered PNGs, top-down BMPs,
plain PNMs, JPEGs with other sampling factors; and lossy WebP files from tests/data/webp, written with encoder
settings Pillow does not expose) decoded by a compiled model and compared with what Pillow decodes, byte for byte.

One model per pixel format, compiled once: its input is a fixed-size buffer and each image is zero-padded into
it (every decoder stops at its image's end), so the cases need no compile of their own."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import mlcc.backend
from helpers import png_file
from mlcc.errors import MlccError
from mlcc.ops.image import MAX_SIDE

PIL = pytest.importorskip("PIL.Image")  # the test extra installs Pillow; it is the ONNX reference
from PIL import features  # noqa: E402

WEBP_FILES = sorted((Path(__file__).parents[1] / "data" / "webp").glob("*.webp"))
needs_webp = pytest.mark.skipif(not features.check("webp"), reason="this Pillow was built without WebP")
needs_openjpeg = pytest.mark.skipif(not features.check("jpg_2000"), reason="this Pillow was built without OpenJPEG")

BUFFER = 1 << 18
UNSUPPORTED = r"format or variant the model does not read.*\(status 11\)"
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


ZIGZAG = np.array(
    [
        0,
        1,
        8,
        16,
        9,
        2,
        3,
        10,
        17,
        24,
        32,
        25,
        18,
        11,
        4,
        5,
        12,
        19,
        26,
        33,
        40,
        48,
        41,
        34,
        27,
        20,
        13,
        6,
        7,
        14,
        21,
        28,
    ]
    + [35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54]
    + [47, 55, 62, 63]
)


def _jpeg(pixels: np.ndarray, factors, q: int = 3, raw: bool = False, marker=b"JFIF", ids=None) -> bytes:
    """A baseline JPEG written here, for what Pillow cannot write: other sampling factors (YCbCr, JFIF), or with
    raw=True the pixels' channels stored as they are (4 for CMYK / YCCK), behind a JFIF marker, an Adobe one
    (marker=("Adobe", transform)) or none (marker=None), with the given component ids. Each plane is
    box-averaged to its factor; a flat quantisation table, and Huffman tables in which every DC size has a 4-bit
    code and every AC run/size an 8-bit one (valid, if not compact)."""
    h, w, _ = pixels.shape
    rgb = pixels.astype(np.float64)
    ycc = (
        [rgb[..., c] for c in range(rgb.shape[2])]
        if raw
        else [
            0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2],
            128 - 0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2],
            128 + 0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2],
        ]
    )
    ids = ids or list(range(1, len(factors) + 1))
    hmax, vmax = max(f[0] for f in factors), max(f[1] for f in factors)
    mcu_w, mcu_h = 8 * hmax, 8 * vmax
    mx, my = -(-w // mcu_w), -(-h // mcu_h)
    planes = []
    for plane, (fh, fv) in zip(ycc, factors):
        full = np.pad(plane, ((0, my * mcu_h - h), (0, mx * mcu_w - w)), mode="edge")
        sy, sx = vmax // fv, hmax // fh
        planes.append(full.reshape(full.shape[0] // sy, sy, full.shape[1] // sx, sx).mean(axis=(1, 3)))
    n = np.arange(8)
    basis = np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16) * np.where(n[:, None] == 0, np.sqrt(1 / 8), 0.5)
    ac_symbols = [0x00, 0xF0] + [r << 4 | s for r in range(16) for s in range(1, 11)]
    ac_code = {sym: i for i, sym in enumerate(ac_symbols)}
    bits, preds = [], [0] * len(factors)

    def put(value: int, length: int) -> None:
        bits.extend((value >> (length - 1 - i)) & 1 for i in range(length))

    def magnitude(v: int) -> tuple[int, int]:
        size = int(abs(v)).bit_length()
        return size, v if v >= 0 else v + (1 << size) - 1

    for y in range(my):
        for x in range(mx):
            for c, (fh, fv) in enumerate(factors):
                for by in range(fv):
                    for bx in range(fh):
                        r0, c0 = (y * fv + by) * 8, (x * fh + bx) * 8
                        block = planes[c][r0 : r0 + 8, c0 : c0 + 8] - 128
                        coef = np.rint((basis @ block @ basis.T) / q).astype(int).reshape(-1)[ZIGZAG]
                        size, v = magnitude(coef[0] - preds[c])
                        preds[c] = coef[0]
                        put(size, 4)
                        put(v, size)
                        run = 0
                        for k in range(1, 64):
                            if coef[k] == 0:
                                run += 1
                                continue
                            while run > 15:
                                put(ac_code[0xF0], 8)
                                run -= 16
                            size, v = magnitude(coef[k])
                            put(ac_code[run << 4 | size], 8)
                            put(v, size)
                            run = 0
                        if run:
                            put(ac_code[0x00], 8)
    bits.extend([1] * (-len(bits) % 8))
    data = bytearray()
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i : i + 8])), 2)
        data += bytes([byte, 0]) if byte == 0xFF else bytes([byte])

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    sof = struct.pack(">BHHB", 8, h, w, len(factors)) + b"".join(
        bytes([ids[i], fh << 4 | fv, 0]) for i, (fh, fv) in enumerate(factors)
    )
    dc_table = bytes([0x00]) + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    ac_table = bytes([0x10]) + bytes([0] * 7 + [len(ac_symbols)] + [0] * 8) + bytes(ac_symbols)
    sos = bytes([len(factors)]) + b"".join(bytes([i, 0x00]) for i in ids) + bytes([0, 63, 0])
    if marker == b"JFIF":
        app = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    elif marker:
        app = segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, marker[1]))
    else:
        app = b""
    return (
        b"\xff\xd8"
        + app
        + segment(0xDB, bytes([0]) + bytes([q] * 64))
        + segment(0xC0, sof)
        + segment(0xC4, dc_table + ac_table)
        + segment(0xDA, sos)
        + bytes(data)
        + b"\xff\xd9"
    )


@pytest.mark.parametrize(
    "factors",
    [
        ((1, 1), (1, 1), (1, 1)),
        ((2, 2), (1, 1), (1, 1)),
        ((1, 2), (1, 1), (1, 1)),
        ((4, 1), (1, 1), (1, 1)),
        ((2, 2), (1, 2), (2, 1)),
        ((4, 2), (1, 1), (1, 1)),
    ],
    ids=["4:4:4", "4:2:0", "4:4:0", "4:1:1", "mixed", "h4v2"],
)
@pytest.mark.parametrize("size", [(32, 48), (19, 23)])
def test_jpeg_sampling_factors_pillow_cannot_write_match_pillow(decoders, factors, size):
    """Pillow writes 4:4:4, 4:2:2 and 4:2:0 only: JPEGs written here with other factors (vertical-only fancy
    upsampling, chroma replicated 4 times, components subsampled differently) against Pillow's decoding."""
    check(decoders, _jpeg(picture(*size, seed=18), factors))


@pytest.mark.parametrize(
    "marker", [("Adobe", 2), ("Adobe", 0), None], ids=["ycck-adobe", "cmyk-adobe", "cmyk-no-marker"]
)
@pytest.mark.parametrize("factors", [((1, 1),) * 4, ((2, 2), (1, 1), (1, 1), (2, 2))])
def test_four_component_jpegs_match_pillow(decoders, marker, factors):
    """CMYK and YCCK (libjpeg converts YCCK to CMYK; Pillow inverts CMYK, marker or not, then takes it to RGB
    with its own formula). Pillow writes only CMYK with an Adobe marker (also checked)."""
    pixels = np.concatenate([picture(21, 30, seed=21), picture(21, 30, seed=22)[:, :, :1]], -1)
    check(decoders, _jpeg(pixels, factors, q=2, raw=True, marker=marker))
    check(decoders, save(PIL.fromarray(picture(21, 30, seed=23)).convert("CMYK"), "JPEG", quality=90))


@pytest.mark.parametrize("marker", [None, ("Adobe", 0), ("Adobe", 1), b"JFIF"])
def test_three_component_colour_space_is_told_as_libjpeg_tells_it(decoders, marker):
    """With component ids 'R', 'G', 'B': RGB unless a JFIF marker (or an Adobe transform 1) says YCbCr."""
    pixels = picture(17, 26, seed=24)
    check(decoders, _jpeg(pixels, ((1, 1),) * 3, q=2, raw=True, marker=marker, ids=[ord("R"), ord("G"), ord("B")]))


def test_jpeg_with_more_than_ten_blocks_per_mcu_is_refused_as_by_pillow(decoders):
    encoded = _jpeg(picture(16, 32, seed=19), ((4, 2), (2, 1), (1, 1)))  # 8 + 2 + 1 blocks
    with pytest.raises(OSError):
        reference(encoded, "RGB")
    with pytest.raises(MlccError, match=r"contents are invalid.*\(status 10\)"):
        decode(decoders, encoded, "RGB")


def test_grayscale_jpeg_matches_pillow(decoders):
    check(decoders, save(picture(31, 45, seed=2), "JPEG", mode="L", quality=90))


@pytest.mark.parametrize("size", [(32, 32), (33, 17), (1, 1), (61, 45)])
@pytest.mark.parametrize("subsampling", [0, 2])
def test_progressive_jpeg_matches_pillow(decoders, size, subsampling):
    """Spectral selection and successive approximation (DC and AC, first scans and refinements, end-of-band
    runs), as libjpeg's default progression writes them."""
    check(decoders, save(picture(*size, seed=16), "JPEG", progressive=True, quality=85, subsampling=subsampling))


def test_progressive_grayscale_jpeg_with_restarts_matches_pillow(decoders):
    check(decoders, save(picture(50, 40, seed=17), "JPEG", mode="L", progressive=True, restart_marker_blocks=5))


def test_lossless_jpeg_is_refused_with_a_status(decoders):
    encoded = bytearray(save(picture(16, 16), "JPEG"))
    sof = encoded.index(b"\xff\xc0")
    encoded[sof + 1] = 0xC3  # the same frame declared lossless (SOF3)
    with pytest.raises(MlccError, match=UNSUPPORTED):
        decode(decoders, bytes(encoded), "RGB")


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA"])
@pytest.mark.parametrize("level", [0, 6])  # stored blocks; dynamic Huffman codes
def test_png_matches_pillow(decoders, mode, level):
    img = PIL.fromarray(picture(21, 35, seed=3))
    if mode == "P":
        img = img.quantize(50)
    check(decoders, save(img, "PNG", mode=None if mode == "P" else mode, compress_level=level))


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


def _png(pixels: np.ndarray, color_type: int, interlace: bool, kinds=(0, 1, 2, 3, 4), flush_every: int = 0) -> bytes:
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
    if flush_every:  # a sync flush ends a compressed block with an empty stored one, mid-byte
        z = zlib.compressobj(9)
        idat = b"".join(
            z.compress(raw[i : i + flush_every]) + z.flush(zlib.Z_SYNC_FLUSH) for i in range(0, len(raw), flush_every)
        )
        idat += z.flush()
    else:
        idat = zlib.compress(raw, 9)
    return png_file(w, h, 8, color_type, [idat[:40], idat[40:]], interlace)  # the data split over two chunks


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("size", [(13, 11), (1, 1), (3, 9)])
def test_png_filters_and_interlacing_match_pillow(decoders, interlace, size):
    pixels = picture(*size, seed=4)
    check(decoders, _png(pixels, 2, interlace))
    check(decoders, _png(pixels[:, :, :1], 0, interlace), ["RGB"])
    check(decoders, _png(pixels, 2, interlace, flush_every=7), ["RGB"])


@pytest.mark.parametrize("coded", range(1, 17))  # every alignment of the block's end within the bytes read ahead
def test_png_stored_block_after_a_one_bit_end_of_block_code(decoders, coded):
    """A dynamic-Huffman block whose end-of-block code is 1 bit long, then a stored block: the inflater must give
    back the whole bytes it read ahead of the block boundary (zlib's own streams rarely end a block that way)."""
    bits: list[int] = []

    def put(value: int, n: int, msb_first: bool = False) -> None:
        order = range(n - 1, -1, -1) if msb_first else range(n)
        bits.extend((value >> i) & 1 for i in order)

    put(0, 1)  # not the last block
    put(2, 2)  # dynamic codes
    put(257 - 257, 5)  # 257 literal/length codes
    put(0, 5)  # 1 distance code
    put(18 - 4, 4)  # 18 code-length codes, in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1
    for symbol in (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1):
        put(1 if symbol in (18, 1) else 0, 3)  # code-length symbols 1 and 18 get 1-bit codes: 1 is "0", 18 is "1"
    one, zeros = (0, 1), (1, 1)
    put(*one)  # literal 0: length 1 (code "0")
    put(*zeros)
    put(138 - 11, 7)  # 138 zeros and 117 more: symbols 1..255 unused
    put(*zeros)
    put(117 - 11, 7)
    put(*one)  # end of block (256): length 1 (code "1")
    put(*one)  # the one distance code: length 1
    width = 40
    for _ in range(coded):  # the filter byte and black pixels, a bit each
        put(0, 1, msb_first=True)
    put(1, 1, msb_first=True)  # end of block
    put(1, 1)  # the last block
    put(0, 2)  # stored
    bits.extend([0] * (-len(bits) % 8))
    rest = bytes(range(coded, width + 1))
    data = bytes(sum(b << i for i, b in enumerate(bits[j : j + 8])) for j in range(0, len(bits), 8))
    data += struct.pack("<HH", len(rest), len(rest) ^ 0xFFFF) + rest
    raw = bytes(coded) + rest
    assert zlib.decompress(data, -15) == raw  # the stream is valid deflate
    stream = b"\x78\x01" + data + struct.pack(">I", zlib.adler32(raw))
    png = png_file(width, 1, 8, 0, stream)
    check(decoders, png)
    assert decode(decoders, png, "Grayscale")[0, :, 0].tolist() == list(raw[1:])


@pytest.mark.parametrize("color_type, channels", [(2, 3), (6, 4), (4, 2)])
def test_16_bit_png_matches_pillow(decoders, color_type, channels):
    """16-bit samples become their high byte, as Pillow reads 16-bit RGB, RGBA and gray+alpha PNGs. (A 16-bit
    gray PNG Pillow keeps in 16 bits, as mode I;16, which its RGB conversion clips; mlcc takes the high byte.)"""
    samples = np.random.default_rng(21).integers(0, 65536, (7, 9, channels), dtype=np.uint16)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)
    check(decoders, png_file(9, 7, 16, color_type, zlib.compress(raw)))
    gray_raw = b"".join(b"\x00" + row[:, :1].astype(">u2").tobytes() for row in samples)
    gray = png_file(9, 7, 16, 0, zlib.compress(gray_raw))
    want = (samples[:, :, :1] >> 8).astype(np.uint8)
    np.testing.assert_array_equal(decode(decoders, gray, "Grayscale"), want)


@needs_webp
@pytest.mark.parametrize("size", [(32, 32), (33, 17), (1, 1), (7, 300), (64, 48), (255, 9)])
@pytest.mark.parametrize("quality", [0, 50, 95])
def test_webp_matches_pillow(decoders, size, quality):
    check(decoders, save(picture(*size, seed=size[0]), "WEBP", quality=quality))


@needs_webp
@pytest.mark.parametrize("method", [0, 2, 6])
def test_webp_encoder_methods_match_pillow(decoders, method):
    """Method 0 to 2 use whole-macroblock modes more, 6 the most subblock modes and the trellis."""
    check(decoders, save(picture(61, 83, seed=method), "WEBP", quality=70, method=method))


@needs_webp
def test_webp_with_alpha_and_metadata_chunks_matches_pillow(decoders):
    """The extended layout: VP8X, ICCP, ALPH (alpha, not read), VP8, EXIF; the colours are the VP8 frame's."""
    rgba = np.concatenate([picture(40, 57, seed=3), picture(40, 57, seed=4)[:, :, :1]], -1)
    data = save(rgba, "WEBP", quality=80, icc_profile=b"\0" * 132, exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0")
    assert b"VP8X" in data[:40] and b"ALPH" in data and b"ICCP" in data
    check(decoders, data)


@needs_webp
@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 48), (200, 300)])
@pytest.mark.parametrize("effort", [(0, 0), (50, 4), (100, 6)])  # (quality, method): how hard the encoder tries
def test_lossless_webp_matches_pillow(decoders, size, effort):
    """Predictor, cross-colour and subtract-green transforms, LZ77 references, the colour cache, meta codes."""
    check(decoders, save(picture(*size, seed=size[1]), "WEBP", lossless=True, quality=effort[0], method=effort[1]))


@needs_webp
@pytest.mark.parametrize("colors", [2, 3, 4, 11, 16, 17, 200])
def test_lossless_webp_with_a_colour_map_matches_pillow(decoders, colors):
    """Colour indexing: 8, 4, 2 or 1 pixels per packed pixel for at most 2, 4, 16 or 256 colours."""
    rng = np.random.default_rng(colors)
    palette = rng.integers(0, 256, (colors, 3), dtype=np.uint8)
    check(decoders, save(palette[rng.integers(0, colors, (45, 67))], "WEBP", lossless=True))


@needs_webp
def test_lossless_webp_with_alpha_matches_pillow(decoders):
    rgba = np.concatenate([picture(40, 50, seed=5), picture(40, 50, seed=6)[:, :, 1:2]], -1)
    check(decoders, save(rgba, "WEBP", lossless=True, exact=True))


@needs_webp
@pytest.mark.parametrize("path", WEBP_FILES, ids=lambda p: p.stem)
def test_webp_encoder_settings_pillow_does_not_expose_match_pillow(decoders, path):
    """4 and 8 token partitions, the simple loop filter, sharpness, one segment, no filter, filter level 63."""
    check(decoders, path.read_bytes())


def test_the_webp_fixtures_are_all_there():
    assert len(WEBP_FILES) == 7, WEBP_FILES


@needs_openjpeg
@pytest.mark.parametrize("size", [(32, 32), (1, 1), (17, 33), (7, 300), (200, 150)])
def test_jpeg2000_matches_pillow(decoders, size):
    """Pillow's default: lossless (reversible 5/3 wavelet), one tile, one layer, LRCP, JP2 container."""
    check(decoders, save(picture(*size, seed=size[0]), "JPEG2000"))


@needs_openjpeg
@pytest.mark.parametrize(
    "options",
    [
        {"mct": 1},  # the reversible colour transform
        {"num_resolutions": 1},
        {"num_resolutions": 8},
        {"codeblock_size": (4, 4)},
        {"codeblock_size": (1024, 4)},
        {"precinct_size": (32, 32)},
        {"progression": "RLCP", "precinct_size": (64, 32)},
        {"progression": "RPCL"},
        {"progression": "PCRL"},
        {"progression": "CPRL"},
        {"progression": "RPCL", "precinct_size": (32, 32), "quality_layers": [30, 10], "mct": 1},
        {"progression": "PCRL", "precinct_size": (64, 32), "tile_size": (70, 90)},
        {"progression": "CPRL", "precinct_size": (16, 16), "codeblock_size": (8, 8), "num_resolutions": 3},
        {"tile_size": (64, 64)},
        {"tile_size": (100, 37), "mct": 1},
        {"offset": (7, 11), "tile_size": (50, 50), "tile_offset": (2, 1)},
        {"no_jp2": True},  # a bare codestream
        {"quality_layers": [40, 20, 5]},  # layers cut by rate: coefficients left unrefined
        {"quality_layers": [30, 10], "progression": "RLCP", "precinct_size": (64, 64)},
        {"plt": True},
        {"irreversible": True},  # lossy: the 9/7 wavelet in single precision, as OpenJPEG computes it
        {"irreversible": True, "mct": 1},  # with the irreversible colour transform
        {"irreversible": True, "quality_layers": [30, 10], "num_resolutions": 8, "codeblock_size": (16, 16)},
        {"irreversible": True, "progression": "RPCL", "precinct_size": (32, 32), "tile_size": (64, 64), "mct": 1},
    ],
    ids=repr,
)
def test_jpeg2000_variants_match_pillow(decoders, options):
    img = picture(150, 210, seed=3)
    check(decoders, save(img, "JPEG2000", **options))


@needs_openjpeg
def test_jpeg2000_with_tiny_tiles_at_odd_offsets_matches_pillow(decoders):
    """3 x 5 tiles from an odd origin: some resolutions of some tiles are empty, others one sample wide."""
    options = {"offset": (7, 11), "tile_size": (3, 5), "tile_offset": (6, 9), "num_resolutions": 2}
    check(decoders, save(picture(20, 30, seed=9), "JPEG2000", **options))


@needs_openjpeg
@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
@pytest.mark.parametrize("irreversible", [False, True])
def test_jpeg2000_gray_and_alpha_match_pillow(decoders, mode, irreversible):
    check(decoders, save(picture(45, 67, seed=8), "JPEG2000", mode=mode, irreversible=irreversible))


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (200, 300)])
@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB"])
@pytest.mark.parametrize("interlace", [False, True])
def test_gif_matches_pillow(decoders, size, mode, interlace):
    img = PIL.fromarray(picture(*size, seed=size[1]))
    img = img.quantize(5) if mode == "P" else img.convert(mode)
    check(decoders, save(img, "GIF", interlace=interlace))


def _gif_parts(data: bytes) -> tuple[int, int]:
    """The global colour table's size in bytes, and where the first image descriptor is."""
    table = 3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0
    at = 13 + table
    while data[at] == 0x21:  # extensions: label, then sub-blocks
        at += 2
        while data[at]:
            at += data[at] + 1
        at += 1
    assert data[at] == 0x2C
    return table, at


def test_gif_frame_inside_a_larger_screen_with_transparency_matches_pillow(decoders):
    """The screen around the frame takes the transparent index's colour (index 0's without one)."""
    img = PIL.fromarray(picture(20, 30, seed=4)).quantize(16)
    for options in ({}, {"transparency": 3}):
        data = bytearray(save(img, "GIF", **options))
        _, at = _gif_parts(data)
        struct.pack_into("<HH", data, 6, 45, 33)  # the logical screen
        struct.pack_into("<HH", data, at + 1, 7, 5)  # the frame's offset in it
        check(decoders, bytes(data))


def test_gif_with_a_local_colour_table_or_none_matches_pillow(decoders):
    data = save(PIL.fromarray(picture(20, 30, seed=5)).quantize(16), "GIF")
    table, _ = _gif_parts(data)
    bare = bytearray(data[:10]) + bytes([data[10] & 0x7F]) + data[11:13] + data[13 + table :]
    check(decoders, bytes(bare))  # no table at all: each index is its own gray level
    _, at = _gif_parts(bare)
    local = bare[: at + 9] + bytes([bare[at + 9] | 0x80 | (data[10] & 7)]) + data[13 : 13 + table] + bare[at + 10 :]
    check(decoders, bytes(local))


def test_animated_gif_gives_its_first_frame_as_pillow(decoders):
    frames = [PIL.fromarray(picture(30, 40, seed=s)) for s in (6, 7, 8)]
    with io.BytesIO() as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:])
        check(decoders, f.getvalue())


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA"])
def test_bmp_matches_pillow(decoders, mode):
    img = PIL.fromarray(picture(19, 23, seed=5))
    check(decoders, save(img.quantize(16) if mode == "P" else img, "BMP", mode=None if mode == "P" else mode))


def _bmp(w: int, h: int, bpp: int, data: bytes, compression: int = 0, masks=(), palette=b"", dib: int = 40) -> bytes:
    """A BMP with a 40-byte header (bit field masks after it) or a longer one (masks inside)."""
    after = b"".join(struct.pack("<I", m) for m in masks) if dib == 40 else b""
    header = struct.pack("<IiiHHIIiiII", dib, w, h, 1, bpp, compression, len(data), 2835, 2835, len(palette) // 4, 0)
    if dib > 40:
        header += b"".join(struct.pack("<I", m) for m in masks) + bytes(dib - 40 - 4 * len(masks))
    offset = 14 + len(header) + len(after) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + header + after + palette + data


def _bmp_rows(rng, w: int, h: int, row_bytes: int) -> bytes:
    return b"".join(rng.integers(0, 256, row_bytes, dtype=np.uint8).tobytes() + bytes(-row_bytes % 4) for _ in range(h))


def test_16_bit_and_bit_field_bmps_match_pillow(decoders):
    """16 bits (5-5-5 plain; 5-6-5 and 5-5-5 as bit fields), 24-bit bit fields, and the eight 32-bit mask
    layouts Pillow reads (with the alpha mask in a 56-byte header, or three masks after a 40-byte one)."""
    rng, w, h = np.random.default_rng(12), 13, 7
    check(decoders, _bmp(w, h, 16, _bmp_rows(rng, w, h, 2 * w)))
    for masks in [(0xF800, 0x7E0, 0x1F), (0x7C00, 0x3E0, 0x1F)]:
        check(decoders, _bmp(w, h, 16, _bmp_rows(rng, w, h, 2 * w), 3, masks))
    check(decoders, _bmp(w, h, 24, _bmp_rows(rng, w, h, 3 * w), 3, (0xFF0000, 0xFF00, 0xFF)))
    for masks in [
        (0xFF0000, 0xFF00, 0xFF, 0),
        (0xFF000000, 0xFF0000, 0xFF00, 0),
        (0xFF000000, 0xFF00, 0xFF, 0),
        (0xFF000000, 0xFF0000, 0xFF00, 0xFF),
        (0xFF, 0xFF00, 0xFF0000, 0xFF000000),
        (0xFF0000, 0xFF00, 0xFF, 0xFF000000),
        (0xFF000000, 0xFF00, 0xFF, 0xFF0000),
        (0, 0, 0, 0),
    ]:
        check(decoders, _bmp(w, h, 32, _bmp_rows(rng, w, h, 4 * w), 3, masks, dib=56))
        if masks[3] == 0:
            check(decoders, _bmp(w, h, 32, _bmp_rows(rng, w, h, 4 * w), 3, masks[:3]))
    with pytest.raises(MlccError, match=UNSUPPORTED):  # a layout Pillow refuses too
        decode(decoders, _bmp(w, h, 16, _bmp_rows(rng, w, h, 2 * w), 3, (0xF00, 0xF0, 0xF)), "RGB")


def test_run_length_encoded_bmps_match_pillow(decoders):
    """RLE8 and RLE4: runs, absolute runs of odd and even length (word-aligned), ends of line, a delta (the
    skipped pixels are index 0), the end of the bitmap; a stream that leaves pixels unset fails, as in Pillow."""
    w, h = 13, 7
    palette = np.random.default_rng(13).integers(0, 256, 4 * 256, dtype=np.uint8).tobytes()
    rle8 = bytes([5, 7, 3, 200, 0, 3, 1, 2, 3, 0, 2, 44, 0, 0, 0, 4, 9, 8, 7, 6, 9, 5, 0, 0, 0, 2, 3, 1, 10, 6, 0, 0])
    rle8 += bytes([13, 3, 0, 0, 13, 4, 0, 0, 13, 8, 0, 1])
    check(decoders, _bmp(w, h, 8, rle8, 1, palette=palette))
    rle4 = bytes([5, 0x7A, 0, 3, 0x12, 0x30, 5, 0x45, 0, 0]) + bytes([13, 0x45, 0, 0]) * 2
    rle4 += bytes([0, 2, 2, 1, 11, 0xF1, 0, 0]) + bytes([13, 0x9C, 0, 0]) * 2 + bytes([0, 1])
    check(decoders, _bmp(w, h, 4, rle4, 2, palette=palette[:64]))
    short = _bmp(w, h, 8, rle8[:20] + bytes([0, 1]), 1, palette=palette)
    with pytest.raises(ValueError, match="not enough image data"):
        PIL.open(io.BytesIO(short)).load()
    with pytest.raises(MlccError, match=r"\(status 10\)"):
        decode(decoders, short, "RGB")


def test_top_down_bmp_matches_pillow(decoders):
    bottom_up = bytearray(save(picture(6, 5, seed=6), "BMP"))
    offset, height = struct.unpack_from("<I", bottom_up, 10)[0], struct.unpack_from("<i", bottom_up, 22)[0]
    stride = (5 * 3 + 3) // 4 * 4
    rows = [bottom_up[offset + i * stride : offset + (i + 1) * stride] for i in range(height)]
    top_down = bottom_up[:offset] + b"".join(reversed(rows))
    struct.pack_into("<i", top_down, 22, -height)
    check(decoders, bytes(top_down))


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA"])
@pytest.mark.parametrize("compression", [None, "packbits", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate"])
def test_tiff_matches_pillow(decoders, mode, compression):
    img = PIL.fromarray(picture(17, 29, seed=7))
    img = img.quantize(30) if mode == "P" else img.convert(mode)
    check(decoders, save(img, "TIFF", compression=compression))


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_tiff_in_several_strips_matches_pillow(decoders, compression):
    """Pillow cuts strips of at most 64 KiB; the noise makes LZW's table fill, widen to 12 bits and clear."""
    check(decoders, save(picture(150, 200, seed=8), "TIFF", compression=compression))


def _tiff(pixels: np.ndarray, tile=None, planar=False, deflate=False, predictor=False, rows_per_strip=None) -> bytes:
    """A little-endian TIFF of 8-bit gray (h, w) or RGB / RGBA (h, w, c) pixels, in strips or (padded) tiles, with
    the samples interleaved or in separate planes; uncompressed or Deflate, with or without differencing."""
    pixels = pixels if pixels.ndim == 3 else pixels[:, :, None]
    h, w, spp = pixels.shape
    planes = [pixels[:, :, c : c + 1] for c in range(spp)] if planar else [pixels]
    tw, th = tile if tile else (w, rows_per_strip or h)
    segments = []
    for plane in planes:
        for y0 in range(0, h, th):
            for x0 in range(0, w, tw):
                block = plane[y0 : y0 + th, x0 : x0 + tw]
                if tile:
                    block = np.pad(block, ((0, th - block.shape[0]), (0, tw - block.shape[1]), (0, 0)))
                rows = block.reshape(block.shape[0], -1).astype(np.int16)
                if predictor:
                    per = block.shape[2]
                    rows[:, per:] = (rows[:, per:] - rows[:, :-per]) % 256
                data = rows.astype(np.uint8).tobytes()
                segments.append(zlib.compress(data) if deflate else data)
    body, entries = bytearray(), []

    def external(fmt: str, values) -> int:
        body.extend(struct.pack(f"<{len(values)}{fmt}", *values))
        return 8 + len(body) - struct.calcsize(f"<{len(values)}{fmt}")

    starts = []
    for seg in segments:
        starts.append(8 + len(body))
        body.extend(seg + bytes(len(seg) % 2))
    many = len(segments) > 1
    offsets = external("I", starts) if many else starts[0]
    counts = external("I", [len(seg) for seg in segments]) if many else len(segments[0])
    bits = external("H", [8] * spp) if spp > 2 else (8 | 8 << 16 if spp == 2 else 8)
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, spp, bits), (259, 3, 1, 8 if deflate else 1)]
    tags += [(262, 3, 1, 2 if spp >= 3 else 1), (273 if not tile else 324, 4, len(segments), offsets)]
    tags += [(277, 3, 1, spp), (279 if not tile else 325, 4, len(segments), counts), (284, 3, 1, 2 if planar else 1)]
    tags += [(278, 4, 1, th)] if not tile else [(322, 4, 1, tw), (323, 4, 1, th)]
    tags += [(317, 3, 1, 2)] if predictor else []
    tags += [(338, 3, 1, 2)] if spp == 4 else []
    for tag in sorted(tags):
        entries.append(struct.pack("<HHII", *tag))
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + bytes(4)
    return b"II*\0" + struct.pack("<I", 8 + len(body)) + bytes(body) + ifd


@pytest.mark.parametrize(
    "options",
    [
        {"planar": True},
        {"planar": True, "rows_per_strip": 10},
        {"tile": (16, 16)},
        {"tile": (32, 16), "planar": True},
        {"tile": (16, 16), "deflate": True, "predictor": True},
        {"tile": (16, 32), "planar": True, "deflate": True, "predictor": True},
        {"planar": True, "deflate": True, "predictor": True, "rows_per_strip": 5},
    ],
    ids=repr,
)
def test_tiled_and_planar_tiffs_match_pillow(decoders, options):
    """Tiles (padded past the image's edges) and separate sample planes, which Pillow reads but does not write."""
    rgb = picture(37, 45, seed=14)
    for pixels in (rgb, rgb[:, :, 0], np.concatenate([rgb, rgb[:, :, :1]], 2)):
        check(decoders, _tiff(pixels, **options))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_tiff_with_horizontal_differencing_matches_pillow(decoders, mode):
    img = PIL.fromarray(picture(23, 31, seed=20)).convert(mode)
    check(decoders, save(img, "TIFF", compression="tiff_lzw", tiffinfo={317: 2}))


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


@pytest.mark.parametrize("maxval", [1, 7, 100, 200, 254, 1000, 65535])
def test_pnm_with_other_maxvals_matches_pillow(decoders, maxval):
    """Samples scaled by 255 / maxval rounded half to even, as Pillow (2-byte samples above 255)."""
    rng = np.random.default_rng(22)
    values = np.concatenate([np.arange(min(maxval, 300) + 1), rng.integers(0, maxval + 1, 60)])
    values = values[: len(values) // 3 * 3]
    width = len(values) // 3
    raw = values.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    check(decoders, b"P6 %d 1 %d\n" % (width, maxval) + raw)
    check(decoders, b"P3 %d 1 %d\n" % (width, maxval) + " ".join(map(str, values)).encode() + b"\n")
    if maxval <= 255:  # Pillow keeps a 16-bit graymap in 32-bit mode I, clipped when converted
        check(decoders, b"P5 %d 1 %d\n" % (len(values), maxval) + values.astype(np.uint8).tobytes())
    else:
        gray = decode(decoders, b"P5 %d 1 %d\n" % (len(values), maxval) + values.astype(">u2").tobytes(), "Grayscale")
        np.testing.assert_array_equal(gray[0, :, 0], np.round(values * 255 / maxval).astype(np.uint8))


@pytest.mark.parametrize(
    "fmt, options",
    [
        ("TIFF", {"compression": "jpeg"}),
    ],
)
def test_unsupported_streams_fail_the_run_with_a_status(decoders, fmt, options):
    with pytest.raises(MlccError, match=UNSUPPORTED):
        decode(decoders, save(picture(40, 40), fmt, **options), "RGB")


@needs_webp
@pytest.mark.parametrize("lossless", [False, True])
def test_animated_webp_gives_its_first_frame_as_pillow(decoders, lossless):
    """The first frame on the canvas; with a transparent border the encoder crops that frame to a rectangle
    inside the canvas (checked), and the rest of the canvas is transparent black."""
    frames = [PIL.fromarray(picture(16, 16, seed=s)) for s in (1, 2)]
    with io.BytesIO() as f:
        frames[0].save(f, format="WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=lossless)
        check(decoders, f.getvalue())
    first = np.zeros((30, 40, 4), np.uint8)
    first[6:20, 10:30, :3], first[6:20, 10:30, 3] = picture(14, 20, seed=3), 255
    frames = [PIL.fromarray(first, "RGBA"), PIL.fromarray(picture(30, 40, seed=4)).convert("RGBA")]
    with io.BytesIO() as f:
        frames[0].save(f, format="WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=lossless)
        data = f.getvalue()
    frame = data.index(b"ANMF") + 8
    assert data[frame : frame + 3] != b"\0\0\0"  # the first frame is offset in the canvas
    check(decoders, data)


def test_an_image_beyond_the_bound_fails_the_run(decoders):
    wide = _png(np.zeros((1, MAX_SIDE + 1, 1), np.uint8), 0, False, kinds=(0,))
    with pytest.raises(MlccError, match=r"would exceed the bound.*\(status 12\)"):
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
        *([save(picture(20, 30, seed=16), "WEBP")] if features.check("webp") else []),
        *([save(picture(20, 30, seed=17), "WEBP", lossless=True)] if features.check("webp") else []),
        WEBP_FILES[0].read_bytes(),
        *([save(picture(20, 30, seed=18), "JPEG2000", quality_layers=[20, 5])] if features.check("jpg_2000") else []),
        *([save(picture(20, 30, seed=19), "JPEG2000", irreversible=True)] if features.check("jpg_2000") else []),
        save(picture(20, 30, seed=20), "GIF", interlace=True),
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
                assert any(f"(status {s})" in str(err) for s in (10, 11, 12)), err  # corrupt, unknown, header too big
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
