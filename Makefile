# Two commands for a newcomer: `make demo` (the platform with demo data) and `make test` (everything).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck install messages bench bench-http clean

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

## Re-extract translatable strings and list those no catalogue of a locale translates yet
## (survey/locales/<locale>/LC_MESSAGES/<area>.po: messages.po for the citizen side, one file per staff area).
messages: $(STAMP)
	mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ --no-location -o var/messages.pot .
	$(BIN)/python -c "from survey.i18n import report_missing; report_missing('var/messages.pot')"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.bench_page_weight
	$(BIN)/python -m benchmarks.bench_load_wave
	$(BIN)/python -m benchmarks.bench_scoring
	$(MAKE) bench-http

## Load test of the citizen paths: throughput with wrk (installed with apt-get if missing, as .ci/run does for
## chromium), latency with benchmarks/loadgen.py; needs PostgreSQL and Redis on 127.0.0.1 for its second table.
bench-http: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk for the load test"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	$(BIN)/python -m benchmarks.bench_http

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
