# `make install` builds .venv; `make test` runs every test (what CI runs), `make demo` the demo. Each installs first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup_venv.sh
	bash scripts/setup_venv.sh $(VENV)
	touch $@

demo: install
	$(VENV)/bin/gansynth-demo

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) benchmarks/run_all.py --quick
