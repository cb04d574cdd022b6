# The two commands: `make run` (install, then start the embedded hub with demo data)
# and `make test` (install, start PostgreSQL and Redis if needed, then lint, type-check, test).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint services bench fuzz docs clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

# axe-core for the browser tests' accessibility checks, from the npm registry.
AXE := node_modules/axe-core/axe.min.js

$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

run: $(INSTALLED)
	$(BIN)/rathaus serve --demo

services:
	deploy/test-services.sh

# The last step is `alembic check` on both backends: a model change without its migration fails here.
lint: $(INSTALLED) services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy hub channels workers
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_schema_drift.py

# The unit tests, each with its own databases, run on both cores; the served hubs, browsers and
# fault runs after them, on both cores too, a module at a time per core: every hub has its own
# ports, data folder, database and Redis, and no test asserts how long something took.
test: $(INSTALLED) services $(AXE) lint
	$(BIN)/pytest -n 2 tests/unit
	$(BIN)/pytest -n 2 --dist loadfile --ignore=tests/unit

# Benchmarks of issue #5 against this machine's PostgreSQL and Redis: `make bench` (full sizes, hours on
# 2 cores) or `make bench BENCH_ARGS=--quick`; each also runs alone, e.g. `python -m bench.rate_limit`.
BENCH_ARGS ?=
bench: $(INSTALLED) services
	$(BIN)/python -m bench $(BENCH_ARGS)

# The fuzz suites at full size: generated webhooks and mail, and schemathesis in-process and against a served hub
# on both backends (`make test` runs them small, RATHAUS_FUZZ_EXAMPLES=40). `make fuzz FUZZ_EXAMPLES=N` for another size.
FUZZ_EXAMPLES ?= 400
fuzz: $(INSTALLED) services
	RATHAUS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -m fuzz --timeout=1800 tests/fuzz

# The documentation site (docs/, mkdocs.yml) into site/; the unit tests build it with --strict too.
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) node_modules data test-output site .pytest_cache .mypy_cache .ruff_cache
