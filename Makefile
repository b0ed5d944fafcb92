# TTCS Hub — `make run` starts a demo hub, `make test` runs the whole suite.
# Both set up everything they need on a fresh Debian machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint spec bench soak system clean help

help:
	@echo "make run    start the hub on embedded defaults with a simulated fleet"
	@echo "make test   run the whole test suite (installs what it needs)"
	@echo "make lint   ruff + mypy --strict"
	@echo "make spec   regenerate docs/spec (JSON Schema, AsyncAPI, OpenAPI) and docs/conformance.md"
	@echo "make bench  benchmarks (figures as JSON lines)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

system:
	@./scripts/ensure-system.sh

run: $(STAMP)
	$(BIN)/ttcs serve --demo

test: $(STAMP) system
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ttcs tests bench
	$(BIN)/mypy

spec: $(STAMP)
	$(BIN)/ttcs spec docs/spec
	$(BIN)/ttcs certify cases --markdown > docs/conformance.md

bench: $(STAMP) system
	@for b in bench/bench_*.py; do echo "# $$b"; $(BIN)/python $$b || exit 1; done

soak: $(STAMP) system
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
