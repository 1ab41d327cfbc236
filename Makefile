# Two commands on a fresh machine: `make run` (set up + default pipeline), `make test` (set up + all tests).
# `make check` (lint + unit tests, a few minutes) is the fast tier while you work.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run paper miniature replicate report test check lint format bench clean

$(STAMP): envs/requirements.txt envs/requirements-dev.txt envs/requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch/torchvision pinned exactly: those two versions are served from local disk here.
	$(BIN)/pip install -q -r envs/requirements-dev.txt
	# Test/benchmark-only packages that would otherwise pull another torch.
	$(BIN)/pip install -q --no-deps -r envs/requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(STAMP)

run: setup  ## the default pipeline (params.yaml) and its report, results/report.html (made by rule page)
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete

paper: setup  ## the paper's configuration on this machine (see README for SLURM)
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete --configfile config/paper.yaml

# The paper's grid in miniature (src/lbhessian/core/miniature.py): every experiment, mode, data set, network,
# batch label and eps grid of config/paper.yaml with only the sizes shrunk; minutes on 2 CPU cores. Downloads the
# data sets like `make paper`; MINIATURE_ARGS="--local-dir cifar100=DIR ..." uses local copies instead.
miniature: setup  ## the paper's configuration in miniature: results/miniature/report.html
	$(BIN)/python -m lbhessian miniature --config config/paper.yaml --out results/miniature/config.yaml $(MINIATURE_ARGS)
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete --configfile results/miniature/config.yaml

# A replication of a design (CONFIG, default params.yaml) on other seeds, optionally other CPU kernels
# (KERNELS=portable): its results in results/replications/<name>/, then every replication's verdicts side by side,
# and the design's own pipeline brought up to date (its report page then shows the verdicts over replications).
CONFIG ?= params.yaml
replicate: setup  ## e.g. make replicate SEEDS="210 211 212 213 214 215" [KERNELS=portable]
	@test -n "$(SEEDS)" || { echo "make replicate: SEEDS is empty: e.g. make replicate SEEDS='210 211 212 213 214 215'"; exit 2; }
	rep=$$($(BIN)/python -m lbhessian replicate --config $(CONFIG) --seeds $(SEEDS) $(if $(KERNELS),--kernels $(KERNELS))) \
	  && $(BIN)/snakemake --cores $(CORES) --rerun-incomplete --configfile $$rep \
	  && $(BIN)/python -m lbhessian replications --config $(CONFIG) \
	  && $(BIN)/snakemake --cores $(CORES) --rerun-incomplete --configfile $(CONFIG)  # the page shows them

# Two lanes side by side (tests/lanes.sh): the SLURM tests (marked cluster, mostly waiting on the scheduler)
# and everything else.
test: setup  ## every test: unit, Snakemake, DVC and SLURM integration
	PYTHON=$(BIN)/python tests/lanes.sh $(PYTEST_ARGS)

check: lint  ## the fast tier: lint, import contracts and unit tests (no Snakemake/DVC/SLURM runs)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/snakefmt Snakefile workflow

bench: setup  ## benchmarks (print throughput ratios against baselines measured in the same run)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf results .snakemake
