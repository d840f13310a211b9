"""ImageDecoder: mlcc's decoders (runtime_c/mlcc_image.h, mlcc_jpeg.h, mlcc_webp.h, mlcc_vp8l.h, mlcc_jpeg2k.h)
against Pillow on a 1920x1080 picture in each format, side by side in one process; the decoded images are compared
byte for byte first. Benchmarks are not tests: nothing here asserts a timing.

    python bench/images.py [--runs 7] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import io
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper
from PIL import Image

import mlcc

CASES = [
    ("JPEG", {"quality": 90}),
    ("JPEG", {"quality": 90, "progressive": True}),
    ("JPEG", {"quality": 75, "subsampling": 0}),
    ("PNG", {}),
    ("TIFF", {"compression": "tiff_lzw"}),
    ("BMP", {}),
    ("WEBP", {"quality": 80}),
    ("WEBP", {"lossless": True}),
    ("JPEG2000", {}),
    ("JPEG2000", {"irreversible": True, "mct": 1}),
]


def picture(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x ^ y) & 255], -1).astype(np.uint8)
    img[::7, ::5] = np.random.default_rng(0).integers(0, 256, img[::7, ::5].shape)
    return img


def best_ms(fn, runs: int) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    h, w = 1080, 1920
    img = picture(h, w)
    lines = [
        f"ImageDecoder, {w}x{h} RGB, best of {args.runs} (ms), {platform.processor() or platform.machine()}",
        "",
        "| format | options | bytes | mlcc | Pillow | mlcc / Pillow |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, options in CASES:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, fmt, **options)
            data = np.frombuffer(buf.getvalue(), np.uint8)
            node = helper.make_node("ImageDecoder", ["data"], ["image"])
            graph = helper.make_graph(
                [node],
                "decode",
                [helper.make_tensor_value_info("data", TensorProto.UINT8, [data.size])],
                [helper.make_tensor_value_info("image", TensorProto.UINT8, None)],
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
            out = Path(tmp) / f"{fmt}{len(lines)}"
            mlcc.compile(model, out_dir=out, output_bounds={"image": [h, w, 3]}, cpu="native")
            compiled = mlcc.load(out)

            def pillow(d=data):
                return np.array(Image.open(io.BytesIO(d.tobytes())).convert("RGB"))

            got = compiled.run({"data": data})["image"]
            assert np.array_equal(got, pillow()), f"{fmt} {options}: the images differ"
            ours = best_ms(lambda d=data, m=compiled: m.run({"data": d}), args.runs)
            theirs = best_ms(pillow, args.runs)
            opts = ", ".join(f"{k}={v}" for k, v in options.items()) or "-"
            lines.append(f"| {fmt} | {opts} | {data.size} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} |")
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
