"""The escaping functions: every untrusted string reaches C only through them."""

from __future__ import annotations

import subprocess

import pytest

from mlcc.codegen.emitter import c_comment, c_string

HOSTILE = [
    "plain_name",
    "*/ int evil = 1; /*",
    'quote " and \\ backslash',
    "line\nbreak\r\n#include <stdio.h>",
    "$(shell rm -rf /) `id`",
    "trigraph ??/ and ??= and ??'",
    "ends with backslash \\",
    "nul\0byte",
    "unicode: é ü 中文 🙂",
    "x" * 10_000,
]


def test_c_string_round_trips_every_byte_through_a_c_compiler(tmp_path):
    raw = [s.encode("utf-8") for s in HOSTILE] + [bytes(range(256)), b"\xff\xfe not utf-8 \x80"]
    table = ",\n".join(f"{{{c_string(b)}, {len(b)}}}" for b in raw)
    src = tmp_path / "t.c"
    src.write_text(
        "#include <stdio.h>\n#include <string.h>\n"
        "static const struct { const char *s; unsigned long n; } t[] = {\n" + table + "\n};\n"
        "int main(void) { for (unsigned i = 0; i < sizeof t / sizeof t[0]; ++i) fwrite(t[i].s, 1, t[i].n, stdout); return 0; }\n"
    )
    exe = tmp_path / "t"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-trigraphs", str(src), "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)], capture_output=True, check=True).stdout == b"".join(raw)


@pytest.mark.parametrize("text", HOSTILE + ["\udcff surrogate-escaped byte"])
def test_c_comment_cannot_end_the_comment_or_the_line(text):
    out = c_comment(text)
    assert "*/" not in out and "/*" not in out and "??" not in out
    assert "\n" not in out and "\r" not in out and not out.endswith("\\")
    assert all(32 <= ord(ch) < 127 for ch in out)
    assert len(out) <= 160


def test_hostile_comments_compile_as_comments(tmp_path):
    body = "\n".join(f"/* {c_comment(s)} */" for s in HOSTILE)
    src = tmp_path / "c.c"
    src.write_text(body + "\nint main(void) { return 0; }\n")
    subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Werror", "-trigraphs", "-Wno-comment", str(src), "-o", str(tmp_path / "c")],
        check=True,
    )
