"""`mlcc bench OUT`: time a compiled model and, with --compare MODEL.onnx, onnxruntime on the same inputs in
the same process, alternating in blocks of a few runs so that both see the same machine state.

Inputs are seeded: standard normal floats, zeros for integers (valid indices and ids), False for bools.
Reported per engine: median and 10th/90th percentile latency, and the resident memory its load and first
run added; for the process: peak RSS. With --compare, the ratio of medians (mlcc / onnxruntime) and the
largest difference between the two engines' outputs, a check that both computed the same thing.
onnxruntime runs with intra_op_num_threads = --threads, sequential execution, default graph optimisations,
its workers spin-waiting as by default. Those workers keep spinning for a while after a run (on squeezenet
at 2 threads, mlcc took 13.1 ms right after an onnxruntime block, 9.3 ms 50 ms later and 6.8 ms 200 ms
later), so the engines alternate in blocks of at least BLOCK runs and BLOCK_SECONDS, with PAUSE seconds
between blocks: each engine is timed on idle cores, as it would run deployed alone.
"""

from __future__ import annotations

import math
import os
import resource
import time
from pathlib import Path

import numpy as np

from .errors import MlccError

BLOCK = 5  # runs of one engine before the other takes over, at least
BLOCK_SECONDS = 0.3  # and at least this long
PAUSE = 0.25  # seconds between blocks: the other engine's workers stop spinning


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _feeds(compiled) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for t in compiled.inputs:
        if t.dtype.kind == "f":
            feeds[t.name] = rng.standard_normal(t.shape).astype(t.dtype)
        elif t.dtype == object:  # strings
            feeds[t.name] = np.full(t.shape, "", dtype=object)
        else:
            feeds[t.name] = np.zeros(t.shape, t.dtype)
    return feeds


def _stats(times: list[float]) -> dict:
    ms = np.asarray(times) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
    }


def _ort_session(model: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise MlccError("--compare needs onnxruntime: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise MlccError(f"onnxruntime cannot load {str(model)!r}: {err}") from None


def bench(out_dir: Path, compare: Path | None = None, threads: int = 1, runs: int = 0, seconds: float = 3.0) -> dict:
    """Measure; `runs` 0 means as many as fit in `seconds` of timed runs per engine (at least 10), after 3
    warm-up runs each."""
    from .runtime.loader import CompiledModel

    if threads < 1:
        raise MlccError("--threads must be at least 1")
    os.environ["MLCC_NUM_THREADS"] = str(threads)  # read by the library at create time
    before = _rss_bytes()
    compiled = CompiledModel(out_dir)
    if compiled.target != "c":
        raise MlccError(f"mlcc bench times c builds; {str(out_dir)!r} is a {compiled.target} build")
    feeds = _feeds(compiled)
    ours = compiled.run_tensors(feeds)
    mlcc_rss = _rss_bytes() - before
    session, theirs, ort_rss = None, None, 0
    if compare is not None:
        before = _rss_bytes()
        session = _ort_session(compare, threads)
        names = {i.name for i in session.get_inputs()}
        if names != set(feeds):
            raise MlccError(f"{str(compare)!r} takes inputs {sorted(names)}; the compiled model takes {sorted(feeds)}")
        theirs = session.run(None, feeds)
        ort_rss = _rss_bytes() - before
    for _ in range(3):
        compiled.run_tensors(feeds)
        if session is not None:
            session.run(None, feeds)
    t = time.perf_counter()
    compiled.run_tensors(feeds)
    block = max(BLOCK, math.ceil(BLOCK_SECONDS / max(time.perf_counter() - t, 1e-6)))
    mine, other = [], []
    while (runs and len(mine) < runs) or (not runs and (len(mine) < 10 or sum(mine) < seconds)):
        # alternate in blocks, with a pause between blocks: both engines' worker threads spin for a while after
        # a run, and closer alternation would time each against the other's spinning (see the module docstring)
        for times, call in ((mine, lambda: compiled.run_tensors(feeds)), (other, lambda: session.run(None, feeds))):
            if times is other and session is None:
                continue
            if session is not None:
                time.sleep(PAUSE)
            for _ in range(block if not runs else min(block, runs - len(times))):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
    result = {
        "out_dir": str(out_dir),
        "threads": threads,
        "runs": len(mine),
        "mlcc": {**_stats(mine), "rss_added_bytes": mlcc_rss},
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if session is not None:
        diff = max(float(np.max(np.abs(ours[t.name].astype(np.float64) - b))) for t, b in zip(compiled.outputs, theirs))
        result["onnxruntime"] = {**_stats(other), "rss_added_bytes": ort_rss}
        result["ratio"] = result["mlcc"]["median_ms"] / result["onnxruntime"]["median_ms"]
        result["max_abs_diff"] = diff
        result["compare"] = str(compare)
    compiled.close()
    return result


def describe(result: dict) -> str:
    def row(name: str, r: dict) -> str:
        rss = r["rss_added_bytes"] / 2**20
        return f"  {name:<12} {r['median_ms']:9.3f} ms median (p10 {r['p10_ms']:.3f}, p90 {r['p90_ms']:.3f})  +{rss:.1f} MiB RSS"

    threads = result["threads"]
    head = f"mlcc bench: {result['out_dir']}, {threads} thread{'s' * (threads > 1)}, {result['runs']} runs"
    lines = [head + (" alternating with onnxruntime" if "onnxruntime" in result else ""), row("mlcc", result["mlcc"])]
    if "onnxruntime" in result:
        lines.append(row("onnxruntime", result["onnxruntime"]))
        lines.append(
            f"  ratio mlcc/onnxruntime {result['ratio']:.3f}; outputs differ by at most {result['max_abs_diff']:.3g}"
        )
    lines.append(f"  peak RSS {result['peak_rss_bytes'] / 2**20:.1f} MiB")
    return "\n".join(lines)
