# TTCS Hub — `make run` starts a demo hub, `make test` runs the whole suite.
# Both set up everything they need on a fresh Debian machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint spec bench bench-full soak system clean help

help:
	@echo "make run    start the hub on embedded defaults with a simulated fleet"
	@echo "make test   run the whole test suite (installs what it needs)"
	@echo "make lint   ruff + mypy --strict"
	@echo "make spec   regenerate docs/spec (JSON Schema, AsyncAPI, OpenAPI) and docs/conformance.md"
	@echo "make bench  every benchmark at a quick size (figures as JSON lines)"
	@echo "make bench-full  the benchmarks at the sizes of the targets (about 30 min)"
	@echo "make soak   a long run with faults (bench/soak.py --minutes 10)"

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
	$(BIN)/pytest -q -n 3

lint: $(STAMP)
	$(BIN)/ruff check ttcs tests bench
	$(BIN)/mypy

spec: $(STAMP)
	$(BIN)/ttcs spec docs/spec
	$(BIN)/ttcs certify cases --markdown > docs/conformance.md

# quick sizes (a few minutes on 2 cores); bench-full runs the sizes of the targets.
# NAME=ARG+ARG+…: the arguments of one benchmark (the others run with their defaults)
BENCH_QUICK := bench_fanout.py=--devices+1000 bench_ingest.py=--devices+2000+--seconds+20 \
               bench_workers.py=--workers+1,2
BENCH_FULL  := bench_fanout.py=--devices+1000+10000 bench_ingest.py=--devices+10000+--seconds+60 \
               bench_polling.py=--devices+2000+--interval+30+--seconds+120 \
               bench_registry.py=--devices+100000

bench: $(STAMP) system
	@./scripts/bench.sh $(BIN)/python $(BENCH_QUICK)

bench-full: $(STAMP) system
	@./scripts/bench.sh $(BIN)/python $(BENCH_FULL)

soak: $(STAMP) system
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
