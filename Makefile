# Two commands set everything up on a fresh machine:  make test   and   make demo
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.padlib-installed
DEVICE ?= cpu

.PHONY: venv data test lint demo bench

# torch and torchvision are resolved together from PyPI (never pin a local CPU-only torch wheel:
# PyPI's torchvision would not import with it)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

data: venv
	PY=$(PY) bash scripts/get_fashion_mnist.sh

lint: venv
	$(PY) -m ruff check .

test: venv data lint
	$(PY) -m pytest

demo: venv data
	$(PY) scripts/demo.py --device $(DEVICE)

bench: venv
	$(PY) scripts/bench_padding.py
