# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
# They need only make, bash and python3 with its venv module (Debian:
# apt-get install python3-venv); they never install into the system Python,
# which Debian marks externally managed (PEP 668).
SHELL := /bin/bash
# Use the interpreter that is there (Debian's /usr/bin/python3.11 qualifies);
# never download one.
export UV_PYTHON_DOWNLOADS := never
# TLS with the platform's trust store, so that a TLS-inspecting proxy whose CA
# the system trusts works without SSL_CERT_FILE.
export UV_SYSTEM_CERTS := true
# The browser tests drive the system's Chromium; never download a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

# uv: the one on PATH if there is one, else this pinned version, pip-installed
# into a private venv (.venv-bootstrap, git-ignored).
UV_VERSION := 0.13.9
BOOTSTRAP := .venv-bootstrap
PATH_UV := $(shell command -v uv 2>/dev/null)
UV := $(or $(PATH_UV),$(BOOTSTRAP)/bin/uv)

.PHONY: setup run test lint typecheck unit check-container bench clean

## setup: uv (see above), then the locked dependencies into .venv
setup: $(if $(PATH_UV),,$(BOOTSTRAP)/bin/uv)
	@$(UV) sync --frozen --quiet

$(BOOTSTRAP)/bin/uv:
	@python3 -m venv $(BOOTSTRAP) || { rm -rf $(BOOTSTRAP); \
	  echo "make: 'python3 -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; \
	  exit 1; }
	@$(BOOTSTRAP)/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

## run: serve on http://127.0.0.1:8000 (OpenAI with OPENAI_API_KEY from the shell or .env, else the emulator)
# Installs the runtime and the emulator's WebRTC peer only (no dev group);
# --inexact keeps a developer's dev tools in .venv. The development defaults
# go in SERVICE_DEV_DEFAULTS, not exported one by one: the service applies
# each only where neither the shell nor .env set it (service/config/sources.py),
# so `AUTH_MODE=api_key` in .env wins. The start-up log says which came from where.
DEV_DEFAULTS := AUTH_MODE=none DEMO_PAGE=true WORKERS=1 LOG_FORMAT=console API_DOCS=true
run: $(if $(PATH_UV),,$(BOOTSTRAP)/bin/uv)
	@$(UV) sync --frozen --quiet --no-dev --extra webrtc --inexact
	@defaults='$(DEV_DEFAULTS)'; \
	if [ -z "$$OPENAI_API_KEY" ] && ! grep -Eqs '^OPENAI_API_KEY=.+' .env; then \
	  echo "make run: no OPENAI_API_KEY in the environment or .env, using the built-in upstream EMULATOR (fake secrets)"; \
	  defaults="$$defaults UPSTREAM_EMULATOR=true"; \
	fi; \
	SERVICE_DEV_DEFAULTS="$$defaults" exec $(UV) run --frozen --no-sync python -m service

## lint: ruff (lint + format check), then the layer order and the emulator's separation (import-linter)
lint: setup
	$(UV) run --frozen ruff check service emulator tests bench deploy
	$(UV) run --frozen ruff format --check service emulator tests bench deploy
	$(UV) run --frozen lint-imports --no-cache

## typecheck: mypy --strict
typecheck: setup
	$(UV) run --frozen mypy

## unit: the pytest suite
unit: setup
	$(UV) run --frozen pytest

## test: everything CI checks
test: lint typecheck unit

## check-container: build the image with podman and check it runs (also part of `unit`)
check-container: setup
	$(UV) run --frozen python -m deploy.check_container

## bench: the load benchmark against the peers, the micro-benchmarks, then call supervision at 2,000 calls and against flooding sidebands
bench: setup
	UV=$(UV) bash bench/run.sh
	$(UV) run --frozen python bench/micro_policy.py
	$(UV) run --frozen python bench/micro_upstream.py
	$(UV) run --frozen python bench/micro_schema.py
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	$(UV) run --frozen python bench/micro_limiter.py
	$(UV) run --frozen python bench/supervision.py
	$(UV) run --frozen python bench/hostile_sidebands.py

clean:
	rm -rf .venv $(BOOTSTRAP) .pytest_cache .mypy_cache .ruff_cache
