"""`make conformance`: every ONNX backend node case through mlcc.backend (target c), each in its own forked
process with a time limit, so a crash or hang in generated code fails that case only and shows its reason.
Writes docs/operators.md (every ONNX operator: status and counts per element-type category, and the reason
of every case that fails) and ends with an `N passed, M failed` line.

    python tests/onnx_backend/conformance.py [--jobs 2] [--timeout 300] [--out docs/operators.md] [-k REGEX]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import signal
import sys
import time
import traceback
from collections import Counter, defaultdict
from multiprocessing.connection import wait
from pathlib import Path

import onnx
from onnx import defs

sys.path.insert(0, str(Path(__file__).parent))
from node_cases import node_cases, run_case  # noqa: E402

import mlcc.ops  # noqa: E402
from mlcc.errors import MlccError  # noqa: E402
from mlcc.importer.control_flow import CONTROL_FLOW  # noqa: E402
from mlcc.importer.sequences import SEQUENCE_OPS  # noqa: E402

# Element-type categories, most exotic first: a case belongs to the first whose types it uses.
EXOTIC = [
    ("float4", {"FLOAT4E2M1"}),
    ("int2/uint2", {"INT2", "UINT2"}),
    ("int4/uint4", {"INT4", "UINT4"}),
    ("float8", {"FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0"}),
]
CATEGORIES = ["float32", "float64", "float16", "bfloat16", "integer/bool"] + [c for c, _ in EXOTIC]
CATEGORIES += ["string", "sequence/optional"]
STANDARD = {"float32", "float64", "float16", "bfloat16", "integer/bool"}


def _types(t: onnx.TypeProto, out: set[str]) -> None:
    kind = t.WhichOneof("value")
    if kind == "tensor_type":
        out.add(onnx.TensorProto.DataType.Name(t.tensor_type.elem_type))
    else:
        out.add("NON_TENSOR")


def category(case) -> str:
    """The element-type category of a case, from the types of its graph inputs and outputs."""
    types: set[str] = set()
    for v in [*case.model.graph.input, *case.model.graph.output]:
        _types(v.type, types)
    if "NON_TENSOR" in types:
        return "sequence/optional"
    if "STRING" in types:
        return "string"
    for name, members in EXOTIC:
        if types & members:
            return name
    for name in ("BFLOAT16", "FLOAT16", "DOUBLE", "FLOAT"):
        if name in types:
            return {"BFLOAT16": "bfloat16", "FLOAT16": "float16", "DOUBLE": "float64", "FLOAT": "float32"}[name]
    return "integer/bool"


def _key(s: str) -> str:
    return s.replace("_", "").lower()


def operator_of(name: str, cases) -> tuple[str, str]:
    """(domain, op) a case tests: its single node's op, an expanded case's unexpanded sibling's op, or the op
    whose name the case name starts with."""
    case = cases[name]
    nodes = case.model.graph.node
    if len(nodes) == 1:
        return nodes[0].domain or "", nodes[0].op_type
    base = re.sub(r"_expanded(_ver\d+)?$", "", name)
    if base != name and base in cases:
        return operator_of(base, cases)
    stem = _key(name.removeprefix("test_"))
    best = max((n for n in nodes if stem.startswith(_key(n.op_type))), key=lambda n: len(n.op_type), default=None)
    node = best or nodes[0]
    return node.domain or "", node.op_type


DEVICE = "CPU"  # --device: CUDA runs every case on the cuda target (a GPU machine)


def _child(name: str, conn) -> None:
    os.environ["CFLAGS"] = "-O1"  # one small model per case: build time dominates
    try:
        run_case(node_cases()[name], DEVICE)
        result = ("pass", "")
    except MlccError as e:
        result = ("fail", f"mlcc: {' '.join(str(e).split())[:300]}")
    except AssertionError as e:
        first = next((line for line in str(e).splitlines() if line.strip()), "")
        result = ("fail", f"wrong output: {first.strip()[:300]}")
    except BaseException as e:  # noqa: BLE001 - every failure is reported, none takes the run down
        where = traceback.extract_tb(e.__traceback__)[-1]
        result = ("fail", f"{type(e).__name__}: {str(e)[:200]} ({Path(where.filename).name}:{where.lineno})")
    conn.send(result)
    conn.close()


def _answer(recv) -> tuple[str, str] | None:
    try:
        return recv.recv() if recv.poll() else None
    except EOFError:  # the child died before it answered
        return None


def run_all(names: list[str], jobs: int, timeout: float, work=_child) -> dict[str, tuple[str, str]]:
    """Run `work(name, conn)` for every name in a forked child, `jobs` at a time; (status, reason) per name.
    A child that dies without answering is a crash, one that outlives `timeout` seconds is killed as a hang."""
    ctx = mp.get_context("fork")
    results: dict[str, tuple[str, str]] = {}
    todo, running = list(reversed(names)), {}
    done = 0
    while todo or running:
        while todo and len(running) < jobs:
            name = todo.pop()
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=work, args=(name, send), daemon=True)
            proc.start()
            send.close()
            running[proc.sentinel] = (name, proc, recv, time.monotonic())
        wait(list(running), timeout=1.0)
        for sentinel, (name, proc, recv, start) in list(running.items()):
            late = time.monotonic() - start > timeout
            if proc.is_alive() and not late:
                continue
            if late and proc.is_alive():
                proc.kill()
                proc.join()
                results[name] = ("fail", f"hang: killed after {timeout:.0f} s")
            else:
                proc.join()
                answer = _answer(recv)
                if answer is not None:
                    results[name] = answer
                elif proc.exitcode and proc.exitcode < 0:
                    results[name] = ("fail", f"crash: {signal.Signals(-proc.exitcode).name}")
                else:
                    results[name] = ("fail", f"crash: exit status {proc.exitcode}")
            recv.close()
            del running[sentinel]
            done += 1
            if sys.stderr.isatty():
                print(f"\r{done}/{len(names)} cases", end="", file=sys.stderr, flush=True)
            elif done % 100 == 0 or done == len(names):  # a log (a pipe, a file) gets a line now and then
                failed = sum(1 for status, _ in results.values() if status != "pass")
                print(f"{done}/{len(names)} cases, {failed} failed", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return results


def _all_operators() -> dict[tuple[str, str], int]:
    """Every operator onnx defines (non-deprecated), with its latest since-version."""
    ops: dict[tuple[str, str], int] = {}
    for s in defs.get_all_schemas_with_history():
        if s.deprecated or s.domain.startswith("com.microsoft"):
            continue
        key = (s.domain or "", s.name)
        ops[key] = max(ops.get(key, 0), s.since_version)
    return ops


def _fmt(counts: Counter, passed: Counter) -> str:
    return ", ".join(f"{c} {passed[c]}/{counts[c]}" for c in CATEGORIES if counts[c])


def report(results: dict[str, tuple[str, str]], cases, target: str = "c") -> str:
    by_op: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name in results:
        by_op[operator_of(name, cases)].append(name)
    cat = {name: category(cases[name]) for name in results}
    ok = {name for name, (status, _) in results.items() if status == "pass"}
    registered = set(mlcc.ops.supported_ops())

    total, passed = Counter(cat.values()), Counter(cat[n] for n in ok)
    std_total = sum(total[c] for c in STANDARD)
    std_passed = sum(passed[c] for c in STANDARD)
    lines = [
        "# Operator conformance",
        "",
        "Generated by `make conformance` (tests/onnx_backend/conformance.py): every ONNX backend node test case",
        f"of onnx {onnx.__version__} compiled, built and run through mlcc.backend on the `{target}` target, each in its own",
        "process, compared with the suite's own tolerances. Do not edit by hand.",
        "",
        f"**{len(ok)} of {len(results)} cases pass**; {std_passed} of {std_total} among cases whose inputs and "
        "outputs are tensors of standard element types.",
        "",
        "A case's category is its most exotic element type among its graph inputs and outputs: sequence or",
        "optional values, then string, the sub-byte and float8 types, bfloat16, float16, float64, float32; a case",
        "with only integer and bool tensors is `integer/bool`.",
        "",
        "| category | passed | total |",
        "|---|---:|---:|",
        *[f"| {c} | {passed[c]} | {total[c]} |" for c in CATEGORIES if total[c]],
        "",
        "## Operators",
        "",
        "Status: **all** (every case passes), **partial**, **none** (no case passes), **no cases** (the suite has",
        "none). Kernel: `registry` (mlcc has a kernel), `importer` (resolved while importing: control flow,",
        "sequences and optionals), `function` (expanded from the ONNX function body), `-`.",
        "",
        "| operator | domain | kernel | status | passed/total | by category |",
        "|---|---|---|---|---:|---|",
    ]
    for domain, op in sorted(_all_operators(), key=lambda k: (k[0], k[1])):
        names = by_op.pop((domain, op), [])
        if (domain, op) in registered:
            kernel = "registry"
        elif domain == "" and (op in CONTROL_FLOW or op in SEQUENCE_OPS):
            kernel = "importer"
        else:
            try:
                schema = defs.get_schema(op, domain)
                kernel = "function" if schema.has_function or schema.has_context_dependent_function else "-"
            except defs.SchemaError:
                kernel = "-"
        n_ok = sum(n in ok for n in names)
        status = "no cases" if not names else "all" if n_ok == len(names) else "partial" if n_ok else "none"
        counts, good = Counter(cat[n] for n in names), Counter(cat[n] for n in names if n in ok)
        lines.append(
            f"| {op} | {domain or 'ai.onnx'} | {kernel} | {status} | {n_ok}/{len(names)} | {_fmt(counts, good)} |"
        )
    failures = sorted((n, r) for n, (s, r) in results.items() if s != "pass")
    reasons = Counter(re.sub(r"\d+", "N", r[:60]) for _, r in failures)
    lines += ["", f"## Failing cases ({len(failures)})", ""]
    lines += [f"- {count} × {reason}" for reason, count in reasons.most_common(15)]
    lines += ["", "| case | category | reason |", "|---|---|---|"]
    lines += [f"| {n} | {cat[n]} | {r.replace('|', '/')} |" for n, r in failures]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    ap.add_argument("--out", default="docs/operators.md")
    ap.add_argument("-k", default="", help="only the cases whose name matches this regular expression")
    ap.add_argument("--device", choices=["CPU", "CUDA"], default="CPU", help="CUDA: the cuda target, on a GPU")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    cases = node_cases()
    names = sorted(n for n in cases if re.search(args.k, n))
    start = time.monotonic()
    results = run_all(names, args.jobs, args.timeout)
    failed = sorted(n for n, (s, _) in results.items() if s != "pass")
    if not args.k:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report(results, cases, "cuda" if args.device == "CUDA" else "c"))
        print(f"wrote {args.out}")
    else:
        for n in failed:
            print(f"FAIL {n}: {results[n][1]}")
    print(f"{len(names) - len(failed)} passed, {len(failed)} failed ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
