# Ballotstream: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PY    := .venv/bin/python
STATE := .state
export DAGSTER_HOME := $(CURDIR)/$(STATE)/dagster

.PHONY: help install up down status demo test test-unit chaos ui bench bench-live clean

help:  ## List targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The instance config (dagster_project/instance.py): runs and event logs stay in $(DAGSTER_HOME), the event log
# keeps its SQLite connections open; nothing is sent anywhere (telemetry off).
$(DAGSTER_HOME)/dagster.yaml: Makefile dagster_project/instance.py $(STATE)/.venv-ok
	@$(PY) -m dagster_project.instance $(DAGSTER_HOME) >/dev/null

$(STATE)/.venv-ok: pyproject.toml
	@command -v python3.11 >/dev/null || { echo "python3.11 is not installed" >&2; exit 1; }
	@test -x $(PY) || python3.11 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@mkdir -p $(STATE) && touch $@

install: $(STATE)/.venv-ok  ## Python venv, Kafka jars, versitygw, Apicurio (cached in .state/)
	@bash infra/install.sh

up: install  ## Start Kafka, S3 (versitygw) and the registry; create bucket and topics (idempotent)
	@$(PY) -m infra.services up

down:  ## Stop exactly the services `make up` started
	@$(PY) -m infra.services down

status:  ## Each service, its port and whether it answers
	@$(PY) -m infra.services status

demo: up $(DAGSTER_HOME)/dagster.yaml  ## Ingest the sample election, publish a release, print where it is
	@$(PY) -m pipelines.cli demo --out $(STATE)/sample

test: up $(DAGSTER_HOME)/dagster.yaml  ## The full suite (unit, integration against the real services, CLI end to end)
	$(PY) -m pytest -q -p no:cacheprovider; status=$$?; $(MAKE) --no-print-directory down; exit $$status

# CHAOS_ROUNDS=50: 50 publisher kills, 25 races of 2 and of 3 publishers, 5 broker kills during ingest and 5
# during publish, 420 fuzzed files (~12,000 records). Each test prints one `chaos:` line; they are repeated at the end.
CHAOS_TESTS := tests/unit/test_ingest_fuzz.py tests/integration/test_publish_faults.py \
	tests/integration/test_broker_faults.py tests/integration/test_access_kafka.py
chaos: up  ## The longer fault tests (CHAOS_ROUNDS, default 50) and their figures
	@log=$$(mktemp); CHAOS_ROUNDS=$(or $(CHAOS_ROUNDS),50) $(PY) -m pytest -q -s -p no:cacheprovider $(CHAOS_TESTS) \
		2>&1 | tee $$log; status=$${PIPESTATUS[0]}; echo; echo "figures:"; grep '^chaos:' $$log; rm -f $$log; \
		exit $$status

test-unit: install  ## Only the tests that need no services
	$(PY) -m pytest -q -m "not integration"

ui: up $(DAGSTER_HOME)/dagster.yaml  ## Dagster webserver + daemon on a local instance (storage in .state/dagster)
	.venv/bin/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000

bench: up  ## Benchmarks (not tests): ingest and publish of a 100,000-station election (STATIONS=...)
	$(PY) -m benchmarks.bench_ingest --stations $(or $(STATIONS),100000)
	$(PY) -m benchmarks.bench_publish --stations $(or $(STATIONS),100000)

# A variable, because make would split the literal commas of a function argument.
LIVE_BATCHES := 1000,10000,100000
bench-live: up  ## Election night: batches of new/corrected tallies on a 1,000,000-station history (STATIONS=, BATCHES=, SPREAD=, PLACES=)
	$(PY) -m benchmarks.bench_live --stations $(or $(STATIONS),1000000) --batches $(or $(BATCHES),$(LIVE_BATCHES)) \
		--spread $(or $(SPREAD),random) --places $(or $(PLACES),10)

clean: down  ## Remove all local state (service data, logs, jars, venv)
	rm -rf $(STATE) .venv
