"""A model whose every name and string is hostile compiles to code that behaves exactly like the same model
with clean names, and no hostile byte reaches generated text except through the escaping functions."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mlcc

HOSTILE = [
    "*/ int evil = 1; /*",
    'quote " and \\ backslash \\',
    "line\nbreak\r\n#include <evil.h>\n",
    "$(shell touch /tmp/mlcc_pwned) `touch /tmp/mlcc_pwned2`",
    "trigraph ??/\n and ??=define",
    "unicode é 中文 🙂 \u202e",
    "%s%n%x {{ jinja }} {% if %}",
    "NONUTF8A",  # patched to invalid UTF-8 bytes below
    "x" * 10_000,
]
INVALID_UTF8 = b"\xff\xfe\x80\xc3(\x80ab"  # same length as the placeholder: 8 bytes
PLACEHOLDER = b"NONUTF8A"


def build(names: list[str]) -> onnx.ModelProto:
    """conv -> relu -> add(constant) -> split into two outputs; `names` names every tensor and node."""
    t = iter(names * 3)
    x, w, c, r, k, a, y1, y2 = (next(t) + f"#{i}" for i in range(8))
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), w),
        numpy_helper.from_array(rng.standard_normal((1, 4, 1, 1)).astype(np.float32), k),
    ]
    nodes = [
        helper.make_node("Conv", [x, w], [c], name=next(t), pads=[1, 1, 1, 1], doc_string=next(t)),
        helper.make_node("Relu", [c], [r], name=next(t)),
        helper.make_node("Add", [r, k], [a], name=next(t)),
        helper.make_node("Split", [a], [y1, y2], name=next(t), axis=1, num_outputs=2),
    ]
    graph = helper.make_graph(
        nodes,
        next(t),
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 2, 5, 5])],
        [
            helper.make_tensor_value_info(y1, TensorProto.FLOAT, None),
            helper.make_tensor_value_info(y2, TensorProto.FLOAT, None),
        ],
        inits,
        doc_string=next(t),
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], doc_string=next(t), producer_name=next(t)
    )
    helper.set_model_props(model, {next(t): next(t)})
    return model


def test_hostile_names_behave_like_clean_names(tmp_path):
    clean = build([f"n{i}" for i in range(len(HOSTILE))])
    hostile_bytes = build(HOSTILE).SerializeToString().replace(PLACEHOLDER, INVALID_UTF8)
    (tmp_path / "hostile.onnx").write_bytes(hostile_bytes)

    mlcc.compile(clean, out_dir=tmp_path / "clean")
    mlcc.compile(tmp_path / "hostile.onnx", out_dir=tmp_path / "hostile")
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype(np.float32)
    with mlcc.load(tmp_path / "clean") as a, mlcc.load(tmp_path / "hostile") as b:
        want = a.run({a.inputs[0].name: x})
        got = b.run({b.inputs[0].name: x})
        assert b.inputs[0].name == HOSTILE[0] + "#0"
        assert [o.name for o in b.outputs] == [
            HOSTILE[6] + "#6",
            HOSTILE[7].replace("NONUTF8A", INVALID_UTF8.decode("utf-8", "surrogateescape")) + "#7",
        ]
        for (_, w), (_, g) in zip(sorted(want.items()), sorted(got.items())):
            np.testing.assert_array_equal(g, w)

    out = tmp_path / "hostile"
    code = b"".join(strip_comments_and_strings((out / f).read_bytes()) for f in ("model.c", "model.h"))
    plain = (out / "Makefile").read_bytes() + (out / "weights.S").read_bytes()
    for needle in (b"evil", b"$(shell", b"`touch", b"??", b"jinja", b"%n", INVALID_UTF8, "中文".encode(), b"xxxxxxxx"):
        assert needle not in code, needle  # outside comments and string literals
        assert needle not in plain, needle
    assert all(byte < 128 for byte in (out / "model.c").read_bytes())
    assert max(len(line) for line in (out / "model.c").read_bytes().splitlines()) < 41_000  # one escaped literal
    assert not any(os.path.exists(p) for p in ("/tmp/mlcc_pwned", "/tmp/mlcc_pwned2"))


def strip_comments_and_strings(source: bytes) -> bytes:
    """The C text with comments and string/char literals removed (a lexer's view of what is code)."""
    out, i, n = bytearray(), 0, len(source)
    while i < n:
        if source.startswith(b"/*", i):
            end = source.find(b"*/", i + 2)
            assert end >= 0, "unterminated comment"
            i = end + 2
        elif source.startswith(b"//", i):
            i = source.find(b"\n", i) if source.find(b"\n", i) >= 0 else n
        elif source[i : i + 1] in (b'"', b"'"):
            quote, i = source[i : i + 1], i + 1
            while source[i : i + 1] != quote:
                assert source[i : i + 1] != b"\n", "unterminated literal"
                i += 2 if source[i : i + 1] == b"\\" else 1
            i += 1
        else:
            out += source[i : i + 1]
            i += 1
    return bytes(out)


def test_hostile_generated_code_compiles_without_warnings(tmp_path):
    (tmp_path / "m.onnx").write_bytes(build(HOSTILE).SerializeToString().replace(PLACEHOLDER, INVALID_UTF8))
    mlcc.compile(tmp_path / "m.onnx", out_dir=tmp_path / "o", build=False)
    subprocess.run(
        ["make", "-s", "-C", str(tmp_path / "o"), "CFLAGS=-O1 -Wall -Wextra -Werror -Wno-comment -trigraphs"],
        check=True,
    )
