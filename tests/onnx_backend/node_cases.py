"""The ONNX backend node test cases (onnx.backend.test.case.node, generated in memory: the onnx wheel ships
no node data files) and how one is run through mlcc.backend, with the suite's own comparison and tolerances."""

from __future__ import annotations

import functools
import warnings

from onnx.backend.test.case.node import collect_testcases
from onnx.backend.test.case.test_case import TestCase
from onnx.backend.test.runner import Runner, _normalize_tensor

import mlcc.backend


@functools.cache
def node_cases() -> dict[str, TestCase]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators overflow on purpose (Cast to narrow types)
        return {c.name: c for c in collect_testcases()}


def op_types(case: TestCase) -> set[str]:
    """The ops of a case's model, those in its subgraphs (If/Loop/Scan bodies) included."""
    from mlcc.importer.control_flow import all_nodes

    return {n.op_type for n in all_nodes(case.model.graph)}


def run_case(case: TestCase, device: str = "CPU") -> None:
    """Compile, build and run one case; raises on any mismatch (as onnx's own Runner does)."""
    rep = mlcc.backend.prepare(case.model, device)
    for inputs, ref_outputs in case.data_sets:
        outputs = rep.run([_normalize_tensor(t) for t in inputs])
        compare([_normalize_tensor(t) for t in ref_outputs], list(outputs), case.rtol, case.atol)


def compare(refs: list, outputs: list, rtol: float, atol: float) -> None:
    """The suite's own comparison (Runner.assert_similar_outputs), applied to each tensor: a sequence output
    element by element, an empty optional as None. (The Runner's recursion into sequences calls len() on
    each element, which fails on a 0-d tensor whatever a backend returns.)"""
    assert len(outputs) == len(refs), f"{len(outputs)} outputs, expected {len(refs)}"
    for i, (ref, out) in enumerate(zip(refs, outputs)):
        if ref is None or out is None:
            assert ref is None and out is None, f"output {i}: {out!r}, expected {ref!r}"
        elif isinstance(ref, (list, tuple)):
            assert isinstance(out, (list, tuple)), f"output {i} is a {type(out).__name__}, expected a sequence"
            assert len(out) == len(ref), f"output {i}: a sequence of {len(out)}, expected {len(ref)}"
            for r, o in zip(ref, out):
                Runner.assert_similar_outputs([r], [o], rtol=rtol, atol=atol)
        else:
            Runner.assert_similar_outputs([ref], [out], rtol=rtol, atol=atol)
