# Two commands for a newcomer: `make demo` (the platform with demo data) and `make test` (everything).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck install messages bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the platform on the embedded SQLite database with the demo province loaded.
demo: $(STAMP)
	$(BIN)/sipas demo

## Lint, type-check and run every test (PostgreSQL and browser tests included where reachable).
test: $(STAMP) lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Re-extract translatable strings and merge them into the vi and en catalogues.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ --no-location -o var/messages.pot .
	$(BIN)/pybabel update -i var/messages.pot -d survey/locales --no-location --omit-header

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.bench_page_weight
	$(BIN)/python -m benchmarks.bench_load_wave
	$(BIN)/python -m benchmarks.bench_scoring

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
