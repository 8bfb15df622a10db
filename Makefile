# Face Privacy Guard: every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DATASET ?= ../shared/data/faces/dev
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: help install run test lint bench bench-video bench-scaling bench-load eval deploy-check images clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet "uv>=0.5" || python3 -m pip install --user --quiet --break-system-packages "uv>=0.5"

# Debian packages the tests and `make run` use: a Redis server to start privately when none runs,
# Chromium for the browser tests (Playwright drives the system one; its own download is offline),
# hey, the HTTP load generator of `make bench-load`, and nginx to check the compose proxy config.
SYSTEM_PACKAGES := redis-server chromium hey nginx

$(STAMP): $(UV) pyproject.toml uv.lock */*/pyproject.toml
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
	fi
	$(UV) sync --frozen --all-groups
	@touch $@

install: $(STAMP) ## Create .venv from the lock file (installs uv first if missing)

run: $(STAMP) ## Start Redis (if none answers), a worker per core and the gateway on 127.0.0.1:8080
	$(VENV)/bin/fpg-local

test: $(STAMP) lint ## Lint, type-check and run the whole test suite
	$(VENV)/bin/pytest

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

eval: $(STAMP) ## Score the default profile on the shared dev set (DATASET=..., PROFILE=...)
	$(VENV)/bin/blurcore eval $(DATASET) --profile $(or $(PROFILE),default)

bench: $(STAMP) ## Measure quality and speed side by side; writes docs/benchmarks.md
	UV=$(UV) $(VENV)/bin/python bench/run_benchmarks.py --dataset $(DATASET) --out docs/benchmarks.md \
	  $(if $(wildcard $(DATASET)/../dev2/annotations.json),--sweep-dataset $(DATASET)/../dev2)

VIDEO_DATASET ?= ../shared/data/faces/video
bench-video: $(STAMP) ## Videos side by side with deface (quality, speed, memory over a 10-minute clip); writes docs/video-benchmarks.md
	UV=$(UV) $(VENV)/bin/python bench/video_bench.py --dataset $(VIDEO_DATASET) --out docs/video-benchmarks.md

bench-scaling: $(STAMP) ## Service and library at 1, 2, 4, ... processes up to the core count; writes docs/scaling.md
	UV=$(UV) $(VENV)/bin/python bench/scaling_bench.py --dataset $(DATASET) --out docs/scaling.md

bench-load: $(STAMP) ## 5,000 images through a local stack with hey: errors, latency, memory growth; writes docs/reliability.md
	$(VENV)/bin/python bench/load_bench.py --requests 5000 --out docs/reliability.md

deploy-check: $(STAMP) ## Check deploy/ offline: kustomize, schemas, KEDA, compose, hadolint, checkov
	$(VENV)/bin/pytest tests/deploy -q

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' services/api/pyproject.toml)
images: ## Build the gateway, worker and all-in-one images (needs a Docker engine)
	for target in gateway worker all-in-one; do \
	  docker build -f deploy/docker/Dockerfile --target $$target -t fpg-$$target:$(VERSION) . || exit 1; \
	done

clean: ## Remove the environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache out
