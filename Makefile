# dvx: `make demo` runs the main job end to end, `make test` runs the whole test suite.
# Both create ./.venv on first use. Torch is installed first (the CPU wheel, torch==2.13.0) unless the
# interpreter already sees a torch (a GPU user's own build is kept: the venv sees system site-packages).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dvx-installed
PYTEST_ARGS ?=

.PHONY: install demo test lint bench figures clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dvx demo --workdir .demo

test: $(STAMP)
	$(PY) -m ruff check dvx tests benchmarks
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check dvx tests benchmarks
	$(PY) -m ruff format --check dvx tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

figures: $(STAMP)
	$(PY) -m benchmarks.make_figures

clean:
	rm -rf .demo .pytest_cache
