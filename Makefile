# mlcc developer entry points. `make demo` and `make test` work on a fresh machine with python3 and gcc.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlcc-installed
PYTEST_JOBS ?= 2

.PHONY: all venv demo test conformance fuzz sanitize bench bench-gpu lint clean

all: test

# Where nvcc is installed, cuBLAS's headers and libraries too (the `cublas` extra, about 450 MB): the tests then
# compile and link `--gemm cublas` builds without a GPU, whatever the CUDA toolkit holds.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	if command -v $${NVCC:-nvcc} >/dev/null 2>&1; then $(BIN)/python -m pip install -q -e '.[test,cublas]'; fi
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) -q tests

conformance: $(STAMP)
	$(BIN)/python tests/onnx_backend/conformance.py --jobs $(PYTEST_JOBS) --out docs/operators.md

fuzz: $(STAMP)
	MLCC_FUZZ_EXAMPLES=$${MLCC_FUZZ_EXAMPLES:-5000} MLCC_FUZZ_RANDOM=1 $(BIN)/python -m pytest -q tests/unit/test_fuzz.py

sanitize: $(STAMP)
	MLCC_SANITIZE_MODELS=all $(BIN)/python -m pytest -n $(PYTEST_JOBS) -q tests/sanitize

bench: $(STAMP)
	$(BIN)/python bench/cpu.py --out bench/results

bench-gpu: $(STAMP)
	$(BIN)/python bench/gpu.py --out bench/results

lint: $(STAMP)
	$(BIN)/ruff check compiler tests examples bench
	$(BIN)/ruff format --check compiler tests examples bench

clean:
	rm -rf out .pytest_cache
