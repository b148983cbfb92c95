# The reproduction: every job of the project is one `make` target.
# `make` (or `make help`) lists them. Each target first runs `make setup`, which is idempotent
# and returns in about a second once everything is installed.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
BIN := $(VENV)/bin
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-x -k lsh"`.
PYTEST_ARGS ?=
# DVC's usage analytics stay off even where .dvc/config is not read (it is committed off too).
export DVC_NO_ANALYTICS := 1

.PHONY: help setup reproduce test test-fast lint docs report save-runs bench bench-gpu \
	profile-smoke profile-default profile-paper clean distclean

help: ## List the targets
	@echo "Usage: make <target>   (README.md: Quick start; CONTRIBUTING.md: the contributor's path)"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

setup: ## Install everything: .venv with pinned packages, TeX Live + poppler + tcmalloc (apt), git hooks
	@bash scripts/setup.sh

reproduce: export BENCH := 1
reproduce: setup ## Run the whole study (dvc repro, benchmark peers included) and push its outputs
	$(BIN)/dvc repro
	$(BIN)/dvc push

test: setup lint docs ## What CI runs: pre-commit on all files, the docs build, the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup ## The test suite without the slow end-to-end tests (pytest -m "not slow")
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: setup ## Run every pre-commit hook on every file
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

docs: setup ## Build the Sphinx site into docs/_build/html (warnings are errors)
	@if [ -f docs/conf.py ]; then \
		echo "$(BIN)/sphinx-build -E -W -n --keep-going -q -b html docs docs/_build/html"; \
		$(BIN)/sphinx-build -E -W -n --keep-going -q -b html docs docs/_build/html; \
	else \
		echo "docs: docs/conf.py does not exist yet, nothing to build"; \
	fi

report: setup ## Build report/build/report.pdf from the W&B runs (dvc repro report)
	$(BIN)/dvc repro report

save-runs: setup ## Save this profile's evaluated runs for the report: results/<profile>/ (dvc add)
	$(BIN)/python -m repro.reporting.saved_runs save

# The full sweep whatever the profile's `benchmark.mode` (the default profile runs a small one
# in `make reproduce`); `dvc commit` then records its files as the benchmark stage's output,
# so a later `dvc repro` keeps them (it reruns the stage, in the profile's mode, only when
# its code or params change) and rebuilds the report from them.
bench: export BENCH := 1
bench: setup ## The full benchmark sweep, peers included (19 min on 2 idle cores): metrics/benchmark.json, plots/benchmark/
	$(BIN)/python pipelines/benchmark.py --params params.yaml --mode full \
		--out metrics/benchmark.json --plots plots/benchmark
	$(BIN)/dvc commit --force benchmark

bench-gpu: setup ## The GPU benchmark on a CUDA card (metrics/benchmark-gpu.json; stops without one)
	$(BIN)/python pipelines/benchmark_gpu.py --out metrics/benchmark-gpu.json

profile-smoke: setup ## Switch params.yaml to the smoke profile (the whole pipeline in ~1 min, CI)
	$(BIN)/python -m repro.config use smoke

profile-default: setup ## Switch params.yaml to the default profile (a laptop CPU, minutes)
	$(BIN)/python -m repro.config use default

profile-paper: setup ## Switch params.yaml to the paper's hyperparameters (GPU cluster)
	$(BIN)/python -m repro.config use paper

clean: ## Remove build outputs and caches (keeps .venv, data, models and the DVC cache)
	rm -rf docs/_build report/build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -name __pycache__ -type d -print \
		| xargs rm -rf

distclean: clean ## Also remove .venv and the set-up stamp (the next `make setup` starts over)
	rm -rf $(VENV) .setup-stamp
