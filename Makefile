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

.PHONY: help setup demo test test-fast lint format bench bench-quick quality closed-loop eval eval-record clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the project with pinned constraints

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,mlflow,spark]"
	touch $(STAMP)

demo: setup ## Generate a demo world, run the morning triage offline, write the plan and charts
	@mkdir -p $(DEMO_DIR)
	@rm -f $(DEMO_DIR)/state.sqlite
	$(BIN)/lastmile generate --stores 30 --days 90 --seed 7 \
		--incidents evals/scenarios/demo_incidents.yaml --db $(DEMO_DB)
	$(BIN)/lastmile triage --db $(DEMO_DB) --state-db $(DEMO_DIR)/state.sqlite \
		--date 2026-03-09 --out-dir $(DEMO_DIR)
	@echo
	@cat $(DEMO_DIR)/plan.md
	@echo
	@# asked the morning after the storm's first day: its actions can still act
	$(BIN)/lastmile ask --db $(DEMO_DB) --state-db $(DEMO_DIR)/state.sqlite --today 2026-03-15 \
		"why were deliveries late in R2 yesterday and what should we do?" --out $(DEMO_DIR)/answer_R2.md
	@echo
	@echo "Demo outputs in $(DEMO_DIR)/: plan.md, plan.json, answer_R2.md and charts:"
	@ls -1 $(DEMO_DIR)/*.png
	@# the triage's run id is in plan.json; the command must name the demo's run store
	@echo "Approve the plan's actions with: $(BIN)/lastmile approve $$($(BIN)/python -c "import json; print(json.load(open('$(DEMO_DIR)/plan.json'))['run']['run_id'])") --all --db $(DEMO_DB) --state-db $(DEMO_DIR)/state.sqlite"

TEST_WORKERS ?= 2
test: setup ## Run every test (unit, integration, notebooks), a file per worker (TEST_WORKERS=2)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

test-fast: setup ## Unit tests only
	$(BIN)/pytest -m "not slow and not integration and not notebook" $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check) and mypy --strict on agent/ and tools/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy agent tools

format: setup ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --select I --fix .

bench: setup ## Benchmark suite: small, medium, national worlds, scaling series, targets (out/bench/bench.md)
	$(BIN)/python -m evals.benchmarks.suite --sizes small,medium,national \
		--scaling 50,200,500,2000 --out out/bench

bench-quick: setup ## Benchmark suite on the small and medium worlds, no scaling series (out/bench/bench.md)
	$(BIN)/python -m evals.benchmarks.suite --quick --out out/bench

quality: setup ## Score the analytics tools on 5 seeded worlds per scenario (out/quality/report.md)
	$(BIN)/python -m evals.tool_quality --seeds 5 --out out/quality

closed-loop: setup ## Approve every proposed action in generated worlds; promised against realised (out/closed_loop*)
	$(BIN)/lastmile closed-loop --seed 1 --min-actions 200 --report out/closed_loop
	$(BIN)/lastmile closed-loop --seed 2 --min-actions 120 --efficacy call_backup_drivers=0.5 \
		--report out/closed_loop_half_drivers

eval: setup ## Every shipped suite offline, then the committed cassettes replayed (no network); fails on a regression
	$(BIN)/lastmile eval --suite all --mode offline --report out/eval/offline --jobs $(EVAL_JOBS)
	$(BIN)/lastmile eval --suite all --mode replay --report out/eval/replay --jobs $(EVAL_JOBS)

EVAL_SUITE ?= replay_smollm2
EVAL_JOBS ?= 2
EVAL_SERVER ?=
eval-record: setup ## Re-record EVAL_SUITE's cassettes against LASTMILE_LLM_BASE_URL / _API_KEY (evals/README.md)
	@if [ -z "$$LASTMILE_LLM_BASE_URL$$LASTMILE_LLM_API_KEY" ]; then \
		echo "set LASTMILE_LLM_BASE_URL (a local server) or LASTMILE_LLM_API_KEY (OpenAI), and LASTMILE_LLM_MODEL;"; \
		echo "see evals/README.md, 'Recording cassettes'"; exit 2; fi
	$(BIN)/lastmile eval --suite $(EVAL_SUITE) --mode record --report out/eval/record \
		$(if $(EVAL_SERVER),--server "$(EVAL_SERVER)")

clean: ## Remove generated outputs (keeps .venv)
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
