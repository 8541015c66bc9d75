# Everything runs from .venv, which `make venv` builds from requirements.lock: a fresh clone
# needs only python3 (3.11 or newer).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test bench lint fmt typecheck lock up down clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

venv: $(STAMP) ## create .venv with the locked dependencies and the project (editable)

# uv itself comes from pip; everything else is pinned and hash-checked by requirements.lock.
$(BIN)/uv:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv

# The stamp makes this re-run only when the dependencies change.
$(STAMP): $(BIN)/uv pyproject.toml requirements.lock
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	@touch $@

run: venv ## run gateway + importer (embedded NATS/PostgreSQL unless DM_*_URL set); ARGS="--importers 4"
	$(BIN)/dm-run $(ARGS)

test: venv ## run the tests (they start their own embedded servers)
	$(BIN)/pytest -q $(ARGS)

bench: venv ## run the benchmark
	$(BIN)/python -m bench $(ARGS)

lint: venv ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv ## format and auto-fix with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv ## mypy --strict (configured in pyproject.toml)
	$(BIN)/mypy

lock: $(BIN)/uv ## regenerate requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes \
		-o requirements.lock --python-version 3.11

up: ## start the containers (docker compose)
	docker compose up -d --build

down: ## stop the containers
	docker compose down

clean: ## remove .venv and caches (the data in .dm is kept; delete it to start afresh)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
