# Two commands set everything up on a fresh machine:  make test   and   make demo
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.padlib-installed
DEVICE ?= cpu
# make demo: the CPU preset (minutes); make demo DEVICE=cuda: the slower, closer-to-the-paper preset
ifeq ($(DEVICE),cpu)
DEMO := demo
DEMO_OUT := results/fashion_mnist
else
DEMO := demo_gpu
DEMO_OUT := results/fashion_mnist_gpu
endif

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
	$(PY) train.py experiment=$(DEMO) trainer.device=$(DEVICE)
	$(PY) evaluate.py all sweeps/$(DEMO)_fashion_mnist --out $(DEMO_OUT) --device $(DEVICE)
	@cat $(DEMO_OUT)/tables.md $(DEMO_OUT)/cross.md $(DEMO_OUT)/border_score.md
	@echo; echo "figures:"; ls -1 $(DEMO_OUT)/*.png

# Table 1 timing; the default arguments suit a CPU, e.g. BENCH_ARGS="--device cuda --amp bf16 --channels-last"
BENCH_ARGS ?= --size 64 --batch 8 --steps 21 --threads 1 --clock cpu
bench: venv
	$(PY) scripts/bench_padding.py $(BENCH_ARGS)
	$(PY) evaluate.py timing results/bench/padding_$(if $(findstring cuda,$(BENCH_ARGS)),cuda,cpu).csv --out results/bench
