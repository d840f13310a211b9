"""RegexFullMatch (compiler/ops/regex.py, templates/c/kernels/regex_match.c.j2) against onnxruntime's, which
is RE2: every supported construct on ASCII, UTF-8, empty and multi-line strings, all in one model (a node per
pattern, its C built with warnings as errors); linear time on patterns that make a backtracking matcher
exponential; the Python reference (constant folding) agreeing with the C kernel, invalid UTF-8 included
(onnxruntime cannot take it); and clear compile-time errors for what is refused or malformed."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import mlcc
import mlcc.backend
from helpers import run_ort
from mlcc.errors import ModelError, UnsupportedError

PROBES = [
    # the ONNX node tests' strings
    "www.google.com", "www.facebook.com", "www.bbc.co.uk",
    "account@gmail.com", "account@hotmail.com", "not email", "account2@yahoo.com", " me@yahoo.com!",
    # short ASCII
    "", "a", "aa", "aaa", "ab", "abc", "b", "ba", "aab", "abab", "x_9", "A", "Z", "_", "0", "42", "3.14",
    "abc123", "a b", " ", "\t", "\v", "-", "]", "{", "{2}", "a{,3}", "a.b", "axb", ".", "\\", "\x01", "\x7f", "xx",
    "a" * 1000, "*/ int evil; /*",
    # new lines
    "\n", "a\n", "\na", "a\nb", "a\n\nb",
    # UTF-8: 2, 3 and 4 byte sequences, and the edges of each length
    "é", "aé", "éa", "ÿ", "\u0100", "\u07ff", "\u0800", "\uffff", "\U00010000", "\U0010ffff",
    "中", "中文", "中文abc", "\U0001f600", "naïve café",
]  # fmt: skip

PATTERNS = [
    # the ONNX node tests'
    r"www\.[\w.-]+\.\bcom\b",
    r"(\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$)",
    # literals and escapes
    "", "a", "abc", "é", "中文", r"\.", r"\\", r"\-", r"a\.b", r"\t", r"\n", r"\v", r"\x41", r"\x{4e2d}\x{6587}",
    r"\x7f", r"\001", r"\{2\}", "{", "]", "a{,3}", r"\Qa.b\E", r"\Q.\E*",
    # any character, any byte
    ".", ".*", "...", "(?s).", "(?s).*", r"\C", r"\C\C\C", r"\C+", "a.b",
    # classes
    "[ab]+", "[a-c]+", "[^a]", "[^a]*", "[^a-z]+", "[]a]", "[^]a]", "[a-]", "[-a]", "[a-b-c]+", "[.]", r"[\-]",
    r"[\t-\r]", "[é]", "[^é]", "[à-ÿ]+", r"[\x{4e00}-\x{9fa5}]+", r"[\x{80}-\x{7ff}]", r"[\x{800}-\x{ffff}]",
    r"[\x{10000}-\x{10ffff}]", r"[^\x00-\x7f]+", r"[\x00-\x{10FFFF}]", r"[^\x00-\x{10FFFF}]",
    r"\d+", r"\D", r"\w+", r"\W", r"\s", r"\S", r"[\d\s]+", r"[^\d]", r"[\W]", r"[\d.]+",
    "[[:alpha:]]+", "[[:^alpha:]]", "[[:space:]]", "[[:punct:]]", "[[:word:]]+", "[[:alnum:]_]+", "[[:xdigit:]]+",
    # anchors and word boundaries
    "^a$", "^$", "^", "$", r"\Aa\z", "a$", r"\b", r"\B", r"a\b", r"\ba\b", r"\Ba", r"a\B", r"\b.*\b", r"\b\w+\b \b\w+\b",
    "(?m)^a$", "(?m)a$", "(?m)^$", r"(?m)a$\n^b", r"(?m)(^\w*$\n?)+", "^*", r"\b+",
    # groups and alternation
    "(a)(b)(c)", "(?:a|b)+", "(?P<first>a)b", "(?<n>a)b", "a|", "|a", "|", "(|a)+", "(a|)*", "((a|b)c|d)*",
    "(?:)", "()", "a(b(c(d)?)?)?", "(?:ab|a)(?:bab|b)", "(?s:.)a", "(?s)a|.",
    # quantifiers, greedy and lazy
    "a*", "a+", "a?", "a*?", "a+?", "a??", "a{2}", "a{2,}", "a{1,2}", "a{0}", "a{2,3}?", "x{2}", "(ab){2}", "(a?){3}a{3}",
    "(a*)*", "(a*)*b", "(a|aa)+", "(?:a{2}){1,2}", "a{1000}",
    # a comment cannot end the C comment the pattern is shown in
    r"\*/ int evil; /\*",
]  # fmt: skip


def model(patterns, shape, constant=None) -> onnx.ModelProto:
    """One RegexFullMatch node per pattern on x (a graph input, or `constant` strings), outputs y0, y1, ..."""
    nodes = [helper.make_node("RegexFullMatch", ["x"], [f"y{i}"], pattern=p) for i, p in enumerate(patterns)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.STRING, shape)]
    if constant is not None:
        data = [s.encode("utf-8", "surrogateescape") for s in constant]
        nodes.insert(
            0, helper.make_node("Constant", [], ["x"], value=helper.make_tensor("c", TensorProto.STRING, shape, data))
        )
        inputs = []
    outputs = [helper.make_tensor_value_info(f"y{i}", TensorProto.BOOL, None) for i in range(len(patterns))]
    graph = helper.make_graph(nodes, "regex", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def strings(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


@pytest.fixture(scope="module")
def all_patterns(tmp_path_factory):
    """mlcc's and onnxruntime's outputs for PATTERNS on PROBES, and the generated C (built strictly)."""
    out = tmp_path_factory.mktemp("regex")
    m = model(PATTERNS, [len(PROBES)])
    mlcc.compile(m, out_dir=out, build=False)
    flags = "CFLAGS=-O1 -Wall -Wextra -Werror"
    proc = subprocess.run(["make", "-s", "-C", str(out), flags], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    x = strings(PROBES)
    with mlcc.load(out) as compiled:
        got = compiled.run({"x": x})
    return [got[f"y{i}"] for i in range(len(PATTERNS))], run_ort(m, {"x": x}), (out / "model.c").read_text()


@pytest.mark.parametrize("index", range(len(PATTERNS)), ids=[repr(p) for p in PATTERNS])
def test_pattern_matches_like_onnxruntime(all_patterns, index):
    got, want, _ = all_patterns
    assert got[index].dtype == np.bool_ and got[index].shape == (len(PROBES),)
    differ = {s: bool(w) for s, g, w in zip(PROBES, got[index], want[index]) if g != w}
    assert not differ, f"pattern {PATTERNS[index]!r}: onnxruntime's answers where mlcc's differ: {differ}"


def test_patterns_reach_c_only_as_tables_and_an_escaped_comment(all_patterns):
    source = all_patterns[2]
    assert "*/ int evil" not in source and "\\*\\/ int evil; /\\*" in source


def test_node_tests_shapes_and_a_2d_input():
    """The email node test's [2, 2] input, and its empty [2, 0] one."""
    pattern = PATTERNS[1]
    x = np.array([["account@gmail.com", "account@hotmail.com"], ["not email", "account2@yahoo.com"]], dtype=object)
    (got,) = mlcc.backend.prepare(model([pattern], [2, 2])).run([x])
    np.testing.assert_array_equal(got, [[True, False], [False, True]])
    (empty,) = mlcc.backend.prepare(model([pattern], [2, 0])).run([np.empty((2, 0), dtype=object)])
    assert empty.shape == (2, 0) and empty.dtype == np.bool_


def test_pathological_patterns_take_linear_time():
    """Patterns a backtracking matcher takes exponential time on: 100k bytes each, well under a second."""
    patterns = ["(a*)*b", "(a|aa)*c", "(x+x+)+y", "(?:a?){30}a{30}", "(.*)*,(.*)*,z"]
    probes = ["a" * 100_000, "a" * 99_999 + "b", "x" * 100_000, "a" * 30, ",".join(["a" * 1000] * 100)]
    m = model(patterns, [len(probes)])
    rep = mlcc.backend.prepare(m)
    start = time.perf_counter()
    got = rep.run([strings(probes)])
    assert time.perf_counter() - start < 1.0
    want = run_ort(m, {"x": strings(probes)})
    for p, g, w in zip(patterns, got, want):
        np.testing.assert_array_equal(g, w, err_msg=p)


REFERENCE_PATTERNS = [r"a.c", r"[^é]", r"\W+", r"(?s).*", r"\C*", r"\b\w+\b", "a", "(?m)^$", r"[\x{d800}-\x{dfff}]"]
INVALID_UTF8 = [
    "\udcff",  # a lone 0xff byte
    "a\udce0\udc80\udc80c",  # an overlong 3-byte sequence (RE2's `.` and negated classes accept it)
    "\udced\udca0\udc80",  # an encoded surrogate
    "\udcc3",  # a truncated sequence
]


def test_reference_agrees_with_the_kernel(tmp_path):
    """The same patterns on the same strings, folded at compile time (the reference) and run in C."""
    items = PROBES + INVALID_UTF8
    folded = model(REFERENCE_PATTERNS, [len(items)], constant=items)
    mlcc.compile(folded, out_dir=tmp_path / "folded")
    assert "regex_match" not in (tmp_path / "folded" / "model.c").read_text()  # all computed at compile time
    with mlcc.load(tmp_path / "folded") as compiled:
        want = compiled.run({})
    got = mlcc.backend.prepare(model(REFERENCE_PATTERNS, [len(items)])).run([strings(items)])
    for i, pattern in enumerate(REFERENCE_PATTERNS):
        np.testing.assert_array_equal(got[i], want[f"y{i}"], err_msg=pattern)
    assert want["y0"][len(PROBES) + 1]  # overlong: `.` accepts


def test_a_nul_byte_ends_a_constant_string_and_is_refused_in_an_input(tmp_path):
    """C strings end at NUL: the importer cuts constants there (so folding sees what C sees), and the
    loader refuses run-time strings holding one rather than cutting them silently."""
    folded = model(["ab"], [1], constant=["ab\x00c"])
    mlcc.compile(folded, out_dir=tmp_path / "folded")
    with mlcc.load(tmp_path / "folded") as compiled:
        assert compiled.run({})["y0"].tolist() == [True]
    with pytest.raises(ValueError, match="NUL byte"):
        mlcc.backend.prepare(model(["ab"], [1])).run([strings(["ab\x00c"])])


@pytest.mark.parametrize(
    "pattern, what",
    [
        ("(?=a)", "lookahead"),
        ("a(?!b)", "lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(?>a)", "atomic group"),
        (r"(a)\1", "backreference"),
        ("(?P<n>a)(?P=n)", "backreference"),
        (r"\p{L}", "Unicode class"),
        (r"[\pN]", "Unicode class"),
        ("(?i)abc", "case-insensitive"),
        ("a++", "possessive"),
        (".{1000}.{1000}", "more than 20000 instructions"),
        ("(" * 101 + ")" * 101, "100 deep"),
    ],
)
def test_unsupported_syntax_is_refused_at_compile_time(pattern, what, tmp_path):
    with pytest.raises(UnsupportedError, match=what) as err:
        mlcc.compile(model([pattern], [2]), out_dir=tmp_path, build=False)
    assert repr(pattern)[:40] in str(err.value)


def test_unsupported_syntax_is_refused_by_the_backend_too():
    with pytest.raises(UnsupportedError, match="backreference"):
        mlcc.backend.prepare(model([r"(a)\1"], [2]))


MALFORMED = ["a**", "a{2}*", "*", "a|*", "(a", "a)", "[a", "[]", "[z-a]", r"[a-\d]", "a{1001}", "a{2,1}",
             "((a{10}){10}){11}", r"\Z", r"\e", "\\", r"\x1", r"\x{110000}", "[[:foo:]]", "(?P<>a)", "(?#c)", "(?-)"]  # fmt: skip


@pytest.mark.parametrize("pattern", MALFORMED)
def test_malformed_patterns_are_model_errors_as_re2_rejects_them(pattern, tmp_path):
    m = model([pattern], [2])
    with pytest.raises(ModelError, match="not valid RE2 syntax"):
        mlcc.compile(m, out_dir=tmp_path, build=False)
    with pytest.raises(Exception, match="RegexFullMatch"):
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_non_string_input_is_a_model_error(tmp_path):
    node = helper.make_node("RegexFullMatch", ["x"], ["y"], pattern="a")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.BOOL, None)],
    )
    with pytest.raises(ModelError, match="not a string tensor"):
        mlcc.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), out_dir=tmp_path)
