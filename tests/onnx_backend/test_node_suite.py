"""The ONNX backend node tests (every case onnx's own generators define: 1884 in onnx 1.23) through
mlcc.backend on the c target, compared with the suite's own tolerances.

Cases mlcc cannot compile yet are listed below by reason. They still run, as strict expected failures that
must raise MlccError: an excluded case that starts to pass fails the run (the list must then shrink), and
one that compiles but gives wrong numbers or crashes fails it too. The terminal summary prints the counts.
"""

from __future__ import annotations

import re

import pytest
from node_cases import node_cases, op_types, run_case

from mlcc.errors import MlccError

# Operators mlcc neither implements (registry) nor expands from an ONNX function body yet. Issue 3 takes them.
UNIMPLEMENTED_OPS: set[str] = set()

# Test-name patterns (re.search on the case name), by reason.
EXCLUDED: dict[str, list[str]] = {}


# Cases that compile but whose outputs differ from the expected ones beyond the suite's tolerance, by reason.
# They run as strict expected failures that must raise AssertionError (a mismatch, not a crash).
WRONG_OUTPUT = {
    "random draws: the expected outputs are one draw of numpy's generator, mlcc has its own (counter-based, "
    "fresh each run); tests/unit/test_random.py checks the distributions. The _expanded cases run ONNX's "
    "function body, which draws 1 with probability 1 - p": [
        r"^test_bernoulli",
        r"^test_training_dropout(_default)?(_mask)?$",
    ],
    "float16 rounding of the reference: its Softmax runs in float16 arithmetic (14 of the 144 probabilities of "
    "data set 0 differ from the correctly rounded ones); mlcc computes it in float32 and rounds once, and after "
    "the last MatMul 2 of 192 outputs differ by 1 ulp (0.00049), beyond rtol 1e-3. onnxruntime fails the fused "
    "case too and passes the expanded one": [
        r"^test_attention_4d_causal_fp16(_expanded)?$",
    ],
    "the expected ifft was computed in single precision (1.9e-7 where the exact value is 0, beyond atol 1e-7; "
    "mlcc's double-precision result is closer to the exact one)": [r"^test_dft_inverse(_opset19)?$"],
}


def exclusion(name: str) -> str | None:
    """Why a case is expected to fail, or None."""
    missing = sorted(op_types(node_cases()[name]) & UNIMPLEMENTED_OPS)
    if missing:
        return f"operator not supported yet: {', '.join(missing)}"
    for reason, patterns in EXCLUDED.items():
        if any(re.search(p, name) for p in patterns):
            return reason
    return None


def mismatch(name: str) -> str | None:
    """Why a case is expected to compile but give outputs beyond tolerance, or None."""
    return next((r for r, patterns in WRONG_OUTPUT.items() if any(re.search(p, name) for p in patterns)), None)


def _params():
    for name in sorted(node_cases()):
        marks = []
        if reason := exclusion(name):
            marks = [pytest.mark.xfail(strict=True, raises=MlccError, reason=reason)]
        elif reason := mismatch(name):
            marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)]
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.node_suite
@pytest.mark.parametrize("name", list(_params()))
def test_node(name, monkeypatch):
    monkeypatch.setenv("CFLAGS", "-O1")  # one small model per case: build time dominates
    run_case(node_cases()[name])
