"""Writes the WebP files beside this script: VP8 streams with encoder settings Pillow's save() does not expose
(several token partitions, the simple loop filter, filter sharpness, one segment, no filter), made with the
libwebp that Pillow bundles, called through ctypes (WebPConfig and WebPPicture offsets of encoder ABI 2.x,
checked by reading back the defaults). test_image_decoder.py decodes them and compares with Pillow.

Run from the repository root: .venv/bin/python tests/data/webp/make_fixtures.py"""

from __future__ import annotations

import ctypes
import glob
import os
import struct
from pathlib import Path

import numpy as np
import PIL
import PIL.Image

HERE = Path(__file__).parent
LIB = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(PIL.__file__), "..", "pillow.libs", "libwebp-*.so*"))[0])
ABI = 0x0200
INTS = {
    "method": 8,
    "segments": 24,
    "sns_strength": 28,
    "filter_strength": 32,
    "filter_sharpness": 36,
    "filter_type": 40,
    "partitions": 72,
}


def encode(rgb: np.ndarray, quality: float = 75.0, **settings: int) -> bytes:
    rgb = np.ascontiguousarray(rgb, np.uint8)
    h, w, _ = rgb.shape
    config = ctypes.create_string_buffer(512)
    assert LIB.WebPConfigInitInternal(config, 0, ctypes.c_float(quality), ABI)
    defaults = struct.unpack_from("<i", config.raw, 8)[0], struct.unpack_from("<i", config.raw, 32)[0]
    assert defaults == (4, 60), defaults  # method, filter strength: the layout is the one assumed
    for name, value in settings.items():
        ctypes.c_int.from_buffer(config, INTS[name]).value = value
    assert LIB.WebPValidateConfig(config)
    pic = ctypes.create_string_buffer(512)
    assert LIB.WebPPictureInitInternal(pic, ABI)
    ctypes.c_int.from_buffer(pic, 8).value = w
    ctypes.c_int.from_buffer(pic, 12).value = h
    assert LIB.WebPPictureImportRGB(pic, rgb.ctypes.data_as(ctypes.c_void_p), 3 * w)
    writer = ctypes.create_string_buffer(64)
    LIB.WebPMemoryWriterInit(writer)
    ctypes.c_void_p.from_buffer(pic, 96).value = ctypes.cast(LIB.WebPMemoryWrite, ctypes.c_void_p).value
    ctypes.c_void_p.from_buffer(pic, 104).value = ctypes.addressof(writer)
    ok = LIB.WebPEncode(config, pic)
    data = ctypes.string_at(ctypes.c_void_p.from_buffer(writer, 0).value, ctypes.c_size_t.from_buffer(writer, 8).value)
    LIB.WebPPictureFree(pic)
    LIB.WebPMemoryWriterClear(writer)
    assert ok
    return data


def picture() -> np.ndarray:
    rng = np.random.default_rng(2)
    img = np.array(
        PIL.Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8)).resize((150, 115), PIL.Image.BICUBIC)
    )
    img[30:60, 20:90] = [20, 200, 40]
    img[70:100, 100:140] = rng.integers(0, 256, (30, 40, 3))
    return img


# name: settings (method 0 to 2: the methods whose encoder honours `partitions`; filter_type 0 is the simple filter)
FIXTURES = {
    "partitions4_normal": {"method": 0, "partitions": 2},
    "partitions8_simple": {"method": 2, "partitions": 3, "filter_type": 0},
    "sharpness3": {"filter_sharpness": 3, "filter_strength": 80},
    "sharpness6_simple": {"filter_sharpness": 6, "filter_strength": 90, "filter_type": 0},
    "no_filter": {"filter_strength": 0},
    "one_segment": {"segments": 1},
    "q0_strongest_filter": {"quality": 0.0, "filter_strength": 100},
}

if __name__ == "__main__":
    img = picture()
    for name, settings in FIXTURES.items():
        settings = dict(settings)
        data = encode(img, quality=settings.pop("quality", 75.0), **settings)
        (HERE / f"{name}.webp").write_bytes(data)
        print(name, len(data))
