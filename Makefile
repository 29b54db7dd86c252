# lastmile-agent: every target sets itself up (`make setup` is implied), so a fresh clone
# needs only `make demo` or `make test`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := out/demo
DEMO_DB := $(DEMO_DIR)/world.duckdb
PYTEST_ARGS ?=

.PHONY: help setup demo test test-fast lint format bench quality clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the project with pinned constraints

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: setup ## Generate a demo world with incidents and print what happened
	@mkdir -p $(DEMO_DIR)
	$(BIN)/lastmile generate --stores 30 --days 90 --seed 7 \
		--incidents evals/scenarios/demo_incidents.yaml --db $(DEMO_DB)
	$(BIN)/lastmile info --db $(DEMO_DB)
	$(BIN)/lastmile kpis --db $(DEMO_DB) --store S010 --from 2026-03-05 --to 2026-03-12
	$(BIN)/lastmile kpis --db $(DEMO_DB) --region R2 --from 2026-03-11 --to 2026-03-17
	@echo "Demo database: $(DEMO_DB)  (explore it with: $(BIN)/lastmile kpis --db $(DEMO_DB) --help)"

test: setup ## Run every test (unit, integration, notebooks)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup ## Unit tests only
	$(BIN)/pytest -m "not slow and not integration and not notebook" $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check) and mypy --strict on agent/ and tools/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy agent tools

format: setup ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --select I --fix .

bench: setup ## Benchmarks; results go to out/bench/*.json
	$(BIN)/python evals/benchmarks/bench_generate.py --out out/bench/generate.json

quality: setup ## Score the analytics tools on 5 seeded worlds per scenario (out/quality/report.md)
	$(BIN)/python -m evals.tool_quality --seeds 5 --out out/quality

clean: ## Remove generated outputs (keeps .venv)
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
