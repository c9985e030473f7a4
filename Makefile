# The two commands a newcomer needs: `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: venv dev test lint fmt typecheck unit iac build bench openapi schemas clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

# The whole CRM on this machine (Ctrl-C stops; data is kept in .crm/state/).
dev: venv
	$(BIN)/crm dev

# iac builds the artifact before the tests, which check it (tests/iac/test_artifact.py);
# the type check and the build run side by side.
test: venv lint
	$(MAKE) -j2 typecheck iac
	$(MAKE) unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Each function is its own import root in Lambda, so each is checked on its own path.
typecheck: venv
	$(BIN)/mypy shared/crm_core scripts infra
	for fn in functions/*/; do MYPYPATH=shared:$$fn $(BIN)/mypy $$fn || exit 1; done

unit: venv
	$(BIN)/pytest -q -n 2 --dist loadfile

iac: venv
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml
	$(MAKE) build

# sam build, then infra/build/artifact.py: bytecode for the runtime, and the layer pruned.
build: venv
	$(BIN)/sam build --template template.yaml --build-dir .aws-sam/build --cached --parallel
	$(BIN)/python -m infra.build.artifact .aws-sam/build

bench: venv build
	$(BIN)/python scripts/bench_cold_start.py
	$(BIN)/python scripts/bench_local_cloud.py
	$(BIN)/python scripts/bench_outbox.py
	$(BIN)/python scripts/bench_timeline.py
	$(BIN)/python scripts/bench_leads.py
	$(BIN)/python scripts/bench_scoring.py
	$(BIN)/python scripts/bench_campaign.py
	$(BIN)/python scripts/bench_deals.py
	$(BIN)/python scripts/bench_cases.py

openapi: venv
	$(BIN)/python scripts/generate_openapi.py

schemas: venv
	$(BIN)/python -m infra.build.catalog

clean:
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache
