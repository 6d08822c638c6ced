# One task runner; .ci/run calls the same commands.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint format typecheck bench check

$(PY):
	python3 -m venv $(VENV)

install: $(PY)
	$(VENV)/bin/pip install -c constraints.txt -e '.[dev]'

demo: $(PY)
	$(VENV)/bin/pip install -c constraints.txt -e . && $(PY) examples/rag_demo.py

test: install
	$(PY) -m pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck:
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/typecheck

bench:
	$(VENV)/bin/pip install -e '.[dev,bench]'
	$(PY) bench/trace_overhead.py

check: test lint typecheck
