# Mailroom. `make run` starts everything; `make test` runs the suite.
# Without DATABASE_URL/REDIS_URL both start an embedded PostgreSQL and Redis under var/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
EMBED := $(PY) -m config.embedded --
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint format typecheck migrate bench bench-inbound bench-webmail \
	bench-outbound bench-api bench-events bench-spike clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed ## Create .venv and install pinned dependencies.

# Every process of `make run` writes its metrics under var/metrics (emptied at each start);
# /metrics on the web process sums them (docs/operations.md "Metrics").
run: install ## Run web, SMTP receiver, worker and beat; prints a demo mailbox.
	mkdir -p var
	rm -rf var/metrics && mkdir -p var/metrics
	$(EMBED) sh -c '$(PY) manage.py migrate --no-input -v0 && $(PY) manage.py demo && \
		PROMETHEUS_MULTIPROC_DIR="$(CURDIR)/var/metrics" PATH="$(CURDIR)/$(BIN):$$PATH" \
		exec $(BIN)/honcho start -f Procfile'

test: install ## Run the test suite against real PostgreSQL and Redis.
	$(EMBED) $(PY) -m pytest -q $(PYTEST_ARGS)

lint: install ## ruff lint and format check.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff formatting and fixes.
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy on mailcore, analytics, config.
	$(BIN)/mypy mailcore analytics config

migrate: install ## Apply database migrations.
	$(EMBED) $(PY) manage.py migrate

bench: bench-inbound bench-outbound bench-api bench-events bench-webmail bench-spike ## Run all benchmarks.

bench-inbound: install ## Inbound SMTP throughput vs Postfix (bench/inbound.py).
	$(EMBED) $(PY) bench/inbound.py $(BENCH_ARGS)

bench-outbound: install ## Outbound delivery to smtp-sink vs Postfix relaying (bench/outbound.py).
	$(EMBED) $(PY) bench/outbound.py $(BENCH_ARGS)

bench-api: install ## Send API throughput and latency over gunicorn (bench/api.py).
	$(EMBED) $(PY) bench/api.py $(BENCH_ARGS)

bench-events: install ## Event ingest, live lag and stats queries (bench/events.py).
	$(EMBED) $(PY) bench/events.py $(BENCH_ARGS)

bench-spike: install ## Steady load, then 10x for 60 s on API + SMTP (bench/spike.py; --quick).
	$(EMBED) $(PY) bench/spike.py $(BENCH_ARGS)

bench-webmail: install ## Webmail list/open/search latency on 1M messages (bench/webmail.py).
	$(EMBED) $(PY) bench/webmail.py $(BENCH_ARGS)

clean: ## Remove var/ (embedded database and Redis data).
	rm -rf var
