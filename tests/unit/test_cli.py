"""The `mlcc` command as a user runs it: exit codes, messages, summary, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.onnx"


def mlcc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlcc.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_compile_builds_and_prints_a_summary(tmp_path):
    r = mlcc(str(DEMO), "--input-shape", "image=1,3,32,32", "--name", "demo", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # conv+bn+relu and conv+relu fused; the stride-1 conv1 reads an input padded by its own kernel (direct conv),
    # conv2 (8 channels) a channel-blocked copy (PadBlocks)
    assert "mlcc: compiled 10 nodes -> 8 kernels" in r.stdout
    assert "arena" in r.stdout and "build" in r.stdout
    for name in ("model.h", "model.c", "Makefile", "libdemo.so", "libdemo.a", "report.json"):
        assert (tmp_path / "out" / name).is_file(), name


def test_no_build_writes_sources_only(tmp_path):
    r = mlcc(str(DEMO), "--input-shape", "image=2,3,32,32", "--no-build", "-o", "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "model.c").is_file() and not (tmp_path / "o" / "libmodel.so").exists()
    assert "skipped (--no-build)" in r.stdout


def test_symbolic_input_without_binding(tmp_path):
    r = mlcc(str(DEMO), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("mlcc: error: graph input 'image' dim 0 is symbolic ('batch')")
    assert "Traceback" not in r.stderr


def test_unsupported_ops_exit_2_with_one_list(tmp_path):
    nodes = [
        helper.make_node("Transmogrify", ["x"], ["a"], name="d", domain="org.example"),
        helper.make_node("Frobnicate", ["a"], ["y"], name="f", domain="com.example"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid("com.example", 1), helper.make_opsetid("org.example", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), tmp_path / "u.onnx")
    r = mlcc("u.onnx", cwd=tmp_path)
    assert r.returncode == 2
    assert "2 unsupported operator(s)" in r.stderr and "Transmogrify" in r.stderr and "Frobnicate" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_inputs_get_clear_errors(tmp_path):
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07\x12\xff\xff\xff\xff not a protobuf")
    cases = [
        (["missing.onnx"], "no such file"),
        (["garbage.onnx"], "is not a valid ONNX model"),
        ([str(DEMO), "--name", "1bad-name"], "must be a C identifier"),
        ([str(DEMO), "--input-shape", "image"], "expected NAME=D0,D1"),
        ([str(DEMO), "--gemm", "cublas"], "--gemm cublas applies to --target cuda"),
    ]
    for args, message in cases:
        r = mlcc(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_help_lists_the_documented_options(tmp_path):
    r = mlcc("--help", cwd=tmp_path)
    assert r.returncode == 0
    for option in ("--target", "-o, --output", "--input-shape", "--name", "--no-build", "--weights", "-O", "--verify"):
        assert option in r.stdout, option
    assert "--disable-pass PASS" in r.stdout
    assert "--gemm [own|cublas]" in r.stdout and "--precision [fp32|tf32|fp16|bf16]" in r.stdout


def test_disable_pass_skips_an_optional_pass_and_names_the_valid_ones(tmp_path):
    args = [str(DEMO), "--input-shape", "image=1,3,32,32", "--no-build", "-v"]
    r = mlcc(*args, "-o", "on", cwd=tmp_path)
    assert r.returncode == 0 and "fuse_epilogues" in r.stdout
    r = mlcc(*args, "-o", "off", "--disable-pass", "fuse_epilogues", cwd=tmp_path)
    assert r.returncode == 0 and "fuse_epilogues" not in r.stdout and "fuse_elementwise" in r.stdout
    assert "fused_conv" in (tmp_path / "on" / "model.c").read_text()
    assert "fused_conv" not in (tmp_path / "off" / "model.c").read_text()
    r = mlcc(*args, "-o", "bad", "--disable-pass", "fuse_everything", cwd=tmp_path)
    assert r.returncode == 2 and "no such pass" in r.stderr and "fuse_prologues" in r.stderr
    r = mlcc(*args, "-o", "bad", "--disable-pass", "legalize_types", cwd=tmp_path)
    assert r.returncode == 2 and "mandatory" in r.stderr


def test_output_directory_is_claimed_safely(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    args = [str(DEMO), "--input-shape", "image=1,3,32,32", "--no-build"]
    r = mlcc(*args, "-o", "mine", cwd=tmp_path)
    assert r.returncode == 2 and "mlcc did not create it" in r.stderr and "--force" in r.stderr
    assert not (tmp_path / "mine" / "model.c").exists()
    assert mlcc(*args, "-o", "mine", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "mine" / "notes.txt").read_text() == "user data"
    assert mlcc(*args, "-o", "new/nested", cwd=tmp_path).returncode == 0
    assert mlcc(*args, "-o", "new/nested", cwd=tmp_path).returncode == 0  # its own directory: reused
    (tmp_path / "afile").write_text("x")
    r = mlcc(*args, "-o", "afile", cwd=tmp_path)
    assert r.returncode == 2 and "is a file" in r.stderr
    assert not list(tmp_path.rglob("*.tmp"))
