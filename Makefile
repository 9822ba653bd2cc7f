# Two commands for a newcomer: `make run` (the daily DAG against the sandbox, marts, a summary)
# and `make test` (the whole suite). Everything else is a building block of those two.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SANDBOX_PORT ?= 8765
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: help venv test test-fast lint sandbox run airflow bench docs clean services-deps

help:
	@echo "make run      set up, run the daily DAG against the sandbox, build + publish marts, print a summary"
	@echo "make test     set up and run the whole test suite"
	@echo "make sandbox  serve the Graph API sandbox on 127.0.0.1:$(SANDBOX_PORT) (foreground)"
	@echo "make airflow  the Airflow UI (standalone) with this project's DAGs and the sandbox, on :8080"
	@echo "make bench    run the benchmarks; writes bench/results.json"
	@echo "make lint     ruff (with Airflow's AIR rules)"
	@echo "make docs     dbt docs generate (lineage in dbt_project/target/index.html)"
	@echo "make services-deps  PostgreSQL and Redis server binaries for the Celery e2e test (apt-get)"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

sandbox: $(STAMP)
	$(BIN)/python -m meta_sandbox --host 127.0.0.1 --port $(SANDBOX_PORT) $(SANDBOX_ARGS)

run: $(STAMP)
	$(BIN)/python include/run_local.py

airflow: $(STAMP)
	$(BIN)/python include/run_local.py airflow

bench: $(STAMP)
	$(BIN)/python -m bench

docs: $(STAMP)
	mkdir -p data/build && cd dbt_project && ../$(BIN)/dbt docs generate --profiles-dir .

# Server binaries the CeleryExecutor end-to-end test starts itself, on free loopback ports
# (tests/e2e/celery_cluster.py): PostgreSQL and Redis from Debian's packages. Installs only what is
# missing; the test never uses the system services these packages may set up.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
services-deps:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v redis-server >/dev/null; then \
		echo "postgresql and redis-server are installed"; \
	else \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			postgresql redis-server; \
	fi

clean:
	rm -rf data .airflow dbt_project/target dbt_project/logs
