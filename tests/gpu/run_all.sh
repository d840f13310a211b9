#!/usr/bin/env bash
# Every GPU check, from a source tree, with the machine's own python3 (no venv or install: mlcc is imported
# through a link to compiler/), each step bounded in time and logged, so that one short session on a GPU
# machine gets all of them: the gpu-marked tests, bench/gpu.py (make bench-gpu's script) and the ONNX node
# suite on the cuda target. Needs nvcc, torch (+ torchvision), onnx, onnxruntime, jinja2, click, pytest-xdist.
#
#   OUT=gpu-out tests/gpu/run_all.sh          # logs, gpu.md/gpu.json and node_suite_cuda.md in $OUT
#
# Environment: CUDA_ARCH (default: sm_90 only, the quickest build), T_TESTS / T_BENCH / T_NODES (seconds each
# step may take), BENCH_ARGS (e.g. "--no-compile yolo"), NODES (a -k pattern for the node suite; empty: all).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
link=$(mktemp -d)
ln -s "$PWD/compiler" "$link/mlcc"
export PYTHONPATH="$link${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CUDA_ARCH=${CUDA_ARCH:-"-gencode arch=compute_90,code=sm_90"}
jobs=$(nproc)
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
echo "== gpu tests"
timeout "${T_TESTS:-300}" python3 -m pytest tests/gpu -n "$jobs" -q --tb=short -p no:cacheprovider 2>&1 |
  tee "$OUT/gpu_tests.log" | tail -5
echo "== bench/gpu.py ${BENCH_ARGS:-}"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
timeout "${T_BENCH:-600}" python3 bench/gpu.py --out "$OUT" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log" | grep -v '^| '
echo "== node suite on cuda ${NODES:+(-k $NODES)}"
timeout "${T_NODES:-600}" python3 tests/onnx_backend/conformance.py --device CUDA --jobs "$jobs" --timeout 60 \
  -k "${NODES:-}" --out "$OUT/node_suite_cuda.md" 2>&1 | tee "$OUT/node_suite.log" | tail -3
