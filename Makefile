# Two commands for a newcomer: `make run` (the daily DAG against the sandbox, marts, a summary)
# and `make test` (the whole suite). Everything else is a building block of those two.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SANDBOX_PORT ?= 8765
AIRFLOW_PORT ?= 8080
export SANDBOX_PORT AIRFLOW_PORT
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: help venv browser services-deps compat test test-fast lint sandbox run airflow report bench docs clean

help:
	@echo "make run      set up, run the daily DAG against the sandbox, build + publish marts, print a summary"
	@echo "make test     set up and run the whole test suite (make lint included)"
	@echo "make sandbox  serve the Graph API sandbox on 127.0.0.1:$(SANDBOX_PORT) (foreground)"
	@echo "make airflow  the Airflow UI (standalone) with this project's DAGs and the sandbox, on 127.0.0.1:$(AIRFLOW_PORT)"
	@echo "make report   a static HTML report of the published marts (data/report.html)"
	@echo "make bench    run the benchmarks; writes bench/results.json"
	@echo "make lint     ruff check (with Airflow's AIR rules), ruff format --check, sqlfluff lint dbt_project"
	@echo "make docs     dbt docs generate (lineage in dbt_project/target/index.html)"
	@echo "make services-deps  PostgreSQL and Redis server binaries for the Celery e2e test (apt-get)"
	@echo "make browser  Debian's headless Chromium for the browser tests (as root; .ci/run does it)"
	@echo "make compat   DuckDB $(DUCKDB_COMPAT_VERSION) in .venv/compat/ (the test that opens the marts as an old BI driver would)"

venv: $(STAMP)

# The project itself is installed too (editable): that registers it as an Airflow provider
# (the `meta_graph_api` connection type in the UI); the code still runs from plugins/.
# --compile-bytecode writes every package's .pyc at install: on machines that set
# PYTHONDONTWRITEBYTECODE (this one does) every Airflow, dbt and task process would otherwise compile
# its imports from source each time it starts (`airflow version` 4.1 s -> 1.5 s, a dbt build 22 -> 16 s).
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt -e . -c constraints.txt
	@touch $(STAMP)

# Debian's chromium (no browser download): the browser tests drive it headless with Playwright.
# Needs root and apt; elsewhere those tests skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "make browser: install Debian's chromium as root (apt-get install chromium chromium-driver)"; fi

# An old DuckDB client beside the project's own (never imported by it): a test opens the published
# marts with it in a subprocess, as a BI tool bundling DuckDB 1.1 would (tests/dbt/test_published_marts.py).
DUCKDB_COMPAT_VERSION := 1.1.3
DUCKDB_COMPAT := $(VENV)/compat/duckdb-$(DUCKDB_COMPAT_VERSION)
compat: $(DUCKDB_COMPAT)/.installed

$(DUCKDB_COMPAT)/.installed: $(STAMP)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --target $(DUCKDB_COMPAT) duckdb==$(DUCKDB_COMPAT_VERSION)
	@touch $@

# Test files run on TEST_WORKERS parallel pytest workers (pytest-xdist, one file per worker, so a module's
# servers stay in one process). On 2 cores the suite keeps both busy (dbt builds, Airflow, the sandbox):
# more workers would not finish sooner. Files are handed out in the order
# tests/conftest.py sorts them (longest first); xdist's own reordering (by number of tests) would put the
# long one-test files last and leave workers idle at the end.
# `make lint` is one of the tests (tests/test_lint.py): it runs on a worker beside the other files.
TEST_WORKERS ?= 3
test: compat
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

test-fast: $(STAMP) compat
	$(BIN)/python -m pytest -m "not e2e and not slow"

# sqlfluff's dbt templater compiles the real project (.sqlfluff) against an in-memory DuckDB and a lake
# root that does not exist (every source an empty relation), so it reads nothing of data/ (it writes
# only dbt_project/target/).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	META_DBT_DUCKDB_PATH=:memory: META_LAKE_ROOT=$(CURDIR)/dbt_project/target/no_lake \
		DBT_SEND_ANONYMOUS_USAGE_STATS=False $(BIN)/sqlfluff lint dbt_project

sandbox: $(STAMP)
	$(BIN)/python -m meta_sandbox --host 127.0.0.1 --port $(SANDBOX_PORT) $(SANDBOX_ARGS)

run: $(STAMP)
	$(BIN)/python include/run_local.py

airflow: $(STAMP)
	$(BIN)/python include/run_local.py airflow

report: $(STAMP)
	$(BIN)/python -m meta_ads_elt.report

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
