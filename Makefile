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

.PHONY: venv data slurm test lint demo bench lock gpu-check

# Every package is pinned by requirements.lock (pip constraints), so a fresh clone installs the
# versions the committed results were made with. torch and torchvision come from PyPI together
# (never a local CPU-only torch wheel: PyPI's torchvision would not import with it).
LOCK := requirements.lock
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

# Refresh the pins: the newest versions pyproject.toml allows, resolved in a scratch venv. Commit the
# new lock together with results regenerated under it.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q -e '.[dev]'
	{ echo "# Pinned versions that make test / make demo install (pip constraints; Python $$(.venv-lock/bin/python -c 'import platform; print(platform.python_version())'), $$(uname -s) $$(uname -m))."; \
	  echo "# The committed results were made with these. Refresh with: make lock"; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > $(LOCK)
	rm -rf .venv-lock

venv: $(STAMP)

data: venv
	PY=$(PY) bash scripts/get_fashion_mnist.sh

lint: venv
	$(PY) -m ruff check .

# A real one-node SLURM on this machine for tests/test_slurm.py (Debian's packages; root or sudo). Where it
# cannot start, those tests skip with the reason it gave; CI sets PADLIB_REQUIRE_SLURM=1 and they must run.
slurm:
	-bash scripts/slurm_local.sh start

test: venv data lint slurm
	$(PY) -m pytest

# Test sizes of the resolution report: Fashion-MNIST trains at 32 px. Re-evaluated checkpoints are cached in
# each run's eval_cache/, so a second make demo evaluates nothing again. In-memory Fashion-MNIST: no loader workers.
DEMO_SIZES ?= 24,32,48
DEMO_EVAL := --out $(DEMO_OUT) --device $(DEVICE) --workers 0 --batch-size 128
demo: venv data
	$(PY) train.py experiment=$(DEMO) trainer.device=$(DEVICE)
	$(PY) evaluate.py all sweeps/$(DEMO)_fashion_mnist $(DEMO_EVAL)
	$(PY) evaluate.py tables sweeps/$(DEMO)_fashion_mnist --from-checkpoints $(DEMO_EVAL)
	$(PY) evaluate.py resolution sweeps/$(DEMO)_fashion_mnist --sizes $(DEMO_SIZES) $(DEMO_EVAL)
	@cat $(DEMO_OUT)/tables.md $(DEMO_OUT)/tables_from_checkpoints.md $(DEMO_OUT)/run_timing.md $(DEMO_OUT)/cross.md \
		$(DEMO_OUT)/resolution.md $(DEMO_OUT)/border_score.md
	@echo; echo "figures:"; ls -1 $(DEMO_OUT)/*.png

# Table 1 timing, every mode against zero padding in one process (results/bench/timing.md). The default times
# three CPU settings: Table 1 in miniature (64 px, one thread), the demo's loop (resnet18, 32 px, batch 128) and
# the paper's models at 224 px (resnet50, batch 32); on a GPU e.g. BENCH_ARGS="--device cuda --amp bf16 --channels-last"
BENCH_ARGS ?= --setting table1-cpu demo paper-cpu
bench: venv
	$(PY) scripts/bench_padding.py $(BENCH_ARGS)
	$(PY) evaluate.py timing results/bench/padding_$(if $(findstring cuda,$(BENCH_ARGS)),cuda,cpu).csv --out results/bench

# Checks and times padlib on a CUDA machine (results/bench/gpu_check.md; see results/bench/GPU_CHECK.md),
# e.g. GPU_CHECK_ARGS="--parts 1,3", or "--device cpu --quick --out /tmp/check" to try it on a CPU
GPU_CHECK_ARGS ?=
gpu-check: venv
	$(PY) scripts/gpu_check.py $(GPU_CHECK_ARGS)
