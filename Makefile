# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# uv on PATH, else the copy pip installs (run as a module: works wherever pip put it).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: setup run test lint typecheck unit bench clean

## setup: install uv if missing, then the locked dependencies into .venv
setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet 'uv>=0.9'
	@$(UV) sync --frozen --quiet

## run: start the service (against OpenAI with OPENAI_API_KEY from env or .env, else the emulator)
run: setup
	@if [ -z "$$OPENAI_API_KEY" ] && ! grep -Eqs '^OPENAI_API_KEY=.+' .env; then \
	  echo "make run: no OPENAI_API_KEY in the environment or .env, using the built-in upstream EMULATOR (fake secrets)"; \
	  export UPSTREAM_EMULATOR=true; \
	fi; \
	export AUTH_MODE=$${AUTH_MODE:-none} DEMO_PAGE=$${DEMO_PAGE:-true} WORKERS=$${WORKERS:-1} LOG_FORMAT=$${LOG_FORMAT:-console}; \
	exec $(UV) run --frozen python -m service

## lint: ruff (lint + format check)
lint: setup
	$(UV) run --frozen ruff check service tests bench deploy
	$(UV) run --frozen ruff format --check service tests bench deploy

## typecheck: mypy --strict
typecheck: setup
	$(UV) run --frozen mypy

## unit: the pytest suite
unit: setup
	$(UV) run --frozen pytest

## test: everything CI checks
test: lint typecheck unit

## bench: the load benchmark against the peers, then the policy and limiter micro-benchmarks
bench: setup
	bash bench/run.sh
	$(UV) run --frozen python bench/micro_policy.py
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	$(UV) run --frozen python bench/micro_limiter.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
