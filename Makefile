# Face Privacy Guard: every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DATASET ?= ../shared/data/faces/dev
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: help install redis-if-none-answers run test-tools test lint bench bench-video bench-scaling bench-video-scaling bench-load eval deploy-check images clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet "uv>=0.5" || python3 -m pip install --user --quiet --break-system-packages "uv>=0.5"

# Debian packages, each installed by the targets that need it (as root; otherwise named), so
# `make run` gets no browser or load generator. The package is named after its command.
# Tests: a private Redis (redis-server), Chromium for the browser tests (Playwright drives the
# system one; its own download needs the internet), nginx to check the compose proxy config and
# hey for the short load test.
TEST_PACKAGES := redis-server chromium nginx hey
# Benchmarks: a private Redis for the service stack, and hey, the load generator of bench-load.
BENCH_PACKAGES := redis-server
LOAD_BENCH_PACKAGES := redis-server hey

# $(call apt_install,PACKAGES): apt-get install those whose command is missing (as root),
# or name them and stop.
apt_install = missing=""; for p in $(1); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
  if [ -n "$$missing" ]; then \
    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
    else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
  fi

$(STAMP): $(UV) pyproject.toml uv.lock */*/pyproject.toml
	$(UV) sync --frozen --all-groups
	@touch $@

install: $(STAMP) ## Create .venv from the lock file (installs uv first if missing)

# fpg-local starts a private Redis when none answers at FPG_REDIS_URL; only then is one needed.
REDIS_ANSWERS := from fpg_api.localstack import LocalSettings as S, redis_answers as ok; raise SystemExit(not ok(S().redis_url))
redis-if-none-answers: $(STAMP)
	@$(VENV)/bin/python -c '$(REDIS_ANSWERS)' || { $(call apt_install,redis-server); }

run: redis-if-none-answers ## Start Redis (if none answers), a worker per core and the gateway on 127.0.0.1:8080
	$(VENV)/bin/fpg-local

test-tools: $(STAMP)
	@$(call apt_install,$(TEST_PACKAGES))

test: test-tools lint ## Lint, type-check and run the whole test suite
	$(VENV)/bin/pytest

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

eval: $(STAMP) ## Score the default profile on the shared dev set (DATASET=..., PROFILE=...)
	$(VENV)/bin/blurcore eval $(DATASET) --profile $(or $(PROFILE),default)

bench: $(STAMP) ## Measure quality and speed side by side; writes docs/benchmarks.md
	@$(call apt_install,$(BENCH_PACKAGES))
	UV=$(UV) $(VENV)/bin/python -m bench.run_benchmarks --dataset $(DATASET) --out docs/benchmarks.md \
	  $(if $(wildcard $(DATASET)/../dev2/annotations.json),--sweep-dataset $(DATASET)/../dev2)

VIDEO_DATASET ?= ../shared/data/faces/video
bench-video: $(STAMP) ## Videos side by side with deface (quality, speed, memory over a 10-minute clip); writes docs/video-benchmarks.md
	UV=$(UV) $(VENV)/bin/python -m bench.video_bench --dataset $(VIDEO_DATASET) --out docs/video-benchmarks.md

bench-scaling: $(STAMP) ## Service and library at 1, 2, 4, ... processes up to the core count; writes docs/scaling.md
	@$(call apt_install,$(BENCH_PACKAGES))
	UV=$(UV) $(VENV)/bin/python -m bench.scaling_bench --dataset $(DATASET) --out docs/scaling.md

bench-video-scaling: $(STAMP) ## One 10-minute 1080p recording through the service on 1, 2, 4, ... worker processes, beside the library; writes docs/video-scaling.md
	@$(call apt_install,$(BENCH_PACKAGES))
	$(VENV)/bin/python -m bench.video_scaling --out docs/video-scaling.md $(VIDEO_SCALING_OPTIONS)

bench-load: $(STAMP) ## 5,000 images through a local stack with hey: errors, latency, memory growth; writes docs/reliability.md
	@$(call apt_install,$(LOAD_BENCH_PACKAGES))
	$(VENV)/bin/python -m bench.load_bench --requests 5000 --out docs/reliability.md

deploy-check: $(STAMP) ## Check deploy/ offline: kustomize, schemas, KEDA, compose, hadolint, checkov, nginx -t
	@$(call apt_install,nginx)
	$(VENV)/bin/pytest tests/deploy -q

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' services/api/pyproject.toml)
images: ## Build the gateway, worker and all-in-one images (needs a Docker engine)
	for target in gateway worker all-in-one; do \
	  docker build -f deploy/docker/Dockerfile --target $$target -t fpg-$$target:$(VERSION) . || exit 1; \
	done

clean: ## Remove the environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache out
