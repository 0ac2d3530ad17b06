# fivecogs — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COGS := inputs knowledge marketing communication management
LOCAL_PACKAGES := shared $(addprefix services/,$(COGS)) deploy/ops
STAMP := $(VENV)/.installed

.PHONY: help setup run test lint stack-up stack-down up faults bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.lock $(addsuffix /pyproject.toml,$(LOCAL_PACKAGES))
	@command -v uv >/dev/null || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || uv venv --quiet --python $(PYTHON) $(VENV)
	uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements/dev.lock
	uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation $(addprefix -e ,$(LOCAL_PACKAGES))
	@touch $@

setup: $(STAMP) ## create .venv and install the locked dependencies and the fivecogs packages

run: setup ## start Kafka, Postgres and the five services, play the demo and print the report (Ctrl-C stops all)
	$(BIN)/fivecogs run

test: setup lint ## lint, then the whole suite against real Kafka and Postgres (started and stopped here)
	$(BIN)/pytest

faults: setup ## the fault suite: 20,000 events under kills and restarts on its own stack; 0 mismatches or exit 1
	$(BIN)/fivecogs faults

bench: setup ## throughput on its own stack: ceiling, naive, each service, the chain, two replicas (docs/performance.md)
	$(BIN)/fivecogs bench

lint: setup ## ruff and mypy (strict on shared/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

stack-up: setup ## start the local Kafka + Postgres stack and print its env
	$(BIN)/fivecogs stack up

stack-down: setup ## stop the local stack
	$(BIN)/fivecogs stack down

up: ## run everything in containers with Docker Compose (needs a Docker engine)
	docker compose up --build

clean: ## stop the stack and remove .venv and .stack
	-@test -x $(BIN)/fivecogs && $(BIN)/fivecogs stack down
	rm -rf $(VENV) .stack
