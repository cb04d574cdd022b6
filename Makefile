# The two commands: `make run` (install, then start the embedded hub with demo data)
# and `make test` (install, start PostgreSQL and Redis if needed, then lint, type-check, test).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint services bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/rathaus serve --demo

services:
	deploy/test-services.sh

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy hub channels workers

test: $(INSTALLED) services lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) data test-output .pytest_cache .mypy_cache .ruff_cache
