# Face Privacy Guard: every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DATASET ?= ../shared/data/faces/dev
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: help install run test lint bench eval clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet "uv>=0.5" || python3 -m pip install --user --quiet --break-system-packages "uv>=0.5"

$(STAMP): $(UV) pyproject.toml uv.lock libs/blurcore/pyproject.toml services/api/pyproject.toml services/worker/pyproject.toml
	$(UV) sync --frozen --all-groups
	@touch $@

install: $(STAMP) ## Create .venv from the lock file (installs uv first if missing)

run: $(STAMP) ## Anonymize IN (files, folders, ZIPs) into OUT: make run IN=photos/ OUT=out/
	@if [ -z "$(IN)" ]; then $(VENV)/bin/blurcore blur --help; echo; echo "usage: make run IN=<files, folders or ZIPs> [OUT=out]"; exit 2; fi
	$(VENV)/bin/blurcore blur $(IN) --out $(or $(OUT),out) --report $(or $(OUT),out)/report.json

test: $(STAMP) lint ## Lint, type-check and run the whole test suite
	$(VENV)/bin/pytest

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

eval: $(STAMP) ## Score the default profile on the shared dev set (DATASET=..., PROFILE=...)
	$(VENV)/bin/blurcore eval $(DATASET) --profile $(or $(PROFILE),default)

bench: $(STAMP) ## Measure quality and speed side by side; writes docs/benchmarks.md
	$(VENV)/bin/python bench/run_benchmarks.py --dataset $(DATASET) --out docs/benchmarks.md

clean: ## Remove the environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache out
