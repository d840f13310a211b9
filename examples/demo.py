"""`make demo`: compile examples/demo.onnx to C, build it, run it from Python and from a plain C program,
and print the outputs next to onnxruntime's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "demo.onnx"
OUT = ROOT / "out" / "demo"


def main() -> int:
    print(f"$ mlcc {MODEL.relative_to(ROOT)} --input-shape image=1,3,32,32 --name demo -o {OUT.relative_to(ROOT)}")
    cmd = [
        sys.executable,
        "-m",
        "mlcc.cli",
        str(MODEL),
        "--input-shape",
        "image=1,3,32,32",
        "--name",
        "demo",
        "-o",
        str(OUT),
    ]
    if subprocess.run(cmd).returncode != 0:
        return 1

    import mlcc

    model = mlcc.load(OUT)
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ours = model.run({"image": image})["probs"]
    try:
        import onnxruntime as ort

        ref = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"]).run(None, {"image": image})[0]
    except ImportError:
        ref = None
    np.set_printoptions(precision=6, suppress=True, linewidth=120)
    print("\nmlcc        :", ours[0])
    if ref is not None:
        print("onnxruntime :", ref[0])
        print(f"max |diff|  : {np.abs(ours - ref).max():.3g}")

    exe = OUT / "demo_main"
    cc = [
        "cc",
        "-O2",
        "-I",
        str(OUT),
        str(ROOT / "examples" / "main.c"),
        str(OUT / "libdemo.a"),
        "-lm",
        "-pthread",
        "-o",
        str(exe),
    ]
    print(f"\n$ {' '.join(cc)}")
    subprocess.run(cc, check=True)
    (OUT / "image.bin").write_bytes(image.tobytes())
    print(f"$ {exe} {OUT / 'image.bin'}")
    subprocess.run([str(exe), str(OUT / "image.bin")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
