"""`mlcc bench OUT [--compare MODEL] [--threads N] [--json FILE]`: runs, reports both engines, checks its input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import mlcc
from mlcc.cli import main

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.onnx"


def test_bench_compares_with_onnxruntime_and_writes_json(tmp_path):
    mlcc.compile(DEMO, out_dir=tmp_path / "out", name="demo", input_shapes={"image": [1, 3, 32, 32]})
    result = CliRunner().invoke(
        main, ["bench", str(tmp_path / "out"), "--compare", str(DEMO), "--threads", "2", "--runs", "5", "--json", str(tmp_path / "b.json")]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "alternating with onnxruntime" in result.output and "ratio mlcc/onnxruntime" in result.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["runs"] == 5 and data["threads"] == 2
    assert data["mlcc"]["median_ms"] > 0 and data["onnxruntime"]["median_ms"] > 0
    assert data["max_abs_diff"] < 1e-4  # the two engines computed the same outputs
    assert data["ratio"] == data["mlcc"]["median_ms"] / data["onnxruntime"]["median_ms"]


def test_bench_alone_and_its_errors(tmp_path):
    mlcc.compile(DEMO, out_dir=tmp_path / "out", name="demo", input_shapes={"image": [1, 3, 32, 32]})
    alone = CliRunner().invoke(main, ["bench", str(tmp_path / "out"), "--runs", "3"])
    assert alone.exit_code == 0 and "onnxruntime" not in alone.output and "peak RSS" in alone.output
    (tmp_path / "empty").mkdir()
    bad = CliRunner().invoke(main, ["bench", str(tmp_path / "empty")])
    assert bad.exit_code == 2 and "mlcc: error:" in bad.output and "model.json" in bad.output
    assert "Traceback" not in bad.output
