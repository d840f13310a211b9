# mlcc developer entry points. `make demo` and `make test` work on a fresh machine with python3 and gcc.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlcc-installed
PYTEST_JOBS ?= 2

.PHONY: all venv demo test lint clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) -q tests

lint: $(STAMP)
	$(BIN)/ruff check compiler tests examples
	$(BIN)/ruff format --check compiler tests examples

clean:
	rm -rf out .pytest_cache
