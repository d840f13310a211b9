"""The conformance runner survives crashing, hanging and failing cases and reports each one's reason."""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_backend"))
from conformance import category, node_cases, operator_of, run_all  # noqa: E402


def _work(name, conn):
    if name == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif name == "hang":
        time.sleep(60)
    elif name == "exit":
        os._exit(3)
    conn.send(("pass", "") if name == "ok" else ("fail", "wrong output: x"))


def test_crash_hang_and_failure_are_reported_per_case():
    start = time.monotonic()
    results = run_all(["ok", "segv", "hang", "exit", "bad", "ok2"], jobs=2, timeout=3, work=_work)
    assert time.monotonic() - start < 30
    assert results["ok"] == ("pass", "")
    assert results["segv"] == ("fail", "crash: SIGSEGV")
    assert results["hang"] == ("fail", "hang: killed after 3 s")
    assert results["exit"] == ("fail", "crash: exit status 3")
    assert results["bad"] == ("fail", "wrong output: x")
    assert results["ok2"] == ("fail", "wrong output: x")


def test_cases_map_to_operator_and_type_category():
    cases = node_cases()
    assert operator_of("test_abs", cases) == ("", "Abs")
    assert operator_of("test_layer_normalization_2d_axis0_expanded", cases) == ("", "LayerNormalization")
    assert category(cases["test_cast_FLOAT_to_FLOAT16"]) == "float16"
    assert category(cases["test_cast_FLOAT_to_FLOAT8E4M3FN"]) == "float8"
    assert category(cases["test_gather_0"]) == "float32"
    assert category(cases["test_equal_string"]) == "string"
    assert category(cases["test_and2d"]) == "integer/bool"
