# Two commands on a fresh clone (only Python 3.11 needed):
#   make quickstart   install the tool and run the quickstart on the embedded model -> out/
#   make test         install what tests need and run lint, types and the tests
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: quickstart test check lint types unit bench postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

quickstart: $(BIN)/python
	$(BIN)/pip install --quiet .
	@# exit 1 is the quality gate (a finding at or above fail_on), not a failure of the run
	$(BIN)/orchestrator run examples/quickstart/spec.yaml --output-dir out; code=$$?; [ $$code -le 1 ] || exit $$code

test: $(BIN)/python postgres
	$(BIN)/pip install --quiet -e ".[test]"
	$(MAKE) check

# the Postgres checkpoint tests start their own server from the machine's PostgreSQL binaries
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { echo "installing PostgreSQL for the checkpoint tests"; \
	    apt-get install -y -q --no-install-recommends postgresql >/dev/null; }

check: lint types
	$(BIN)/pytest

lint:
	$(BIN)/ruff check orchestrator tests bench
	$(BIN)/ruff format --check orchestrator tests bench

types:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -m "not integration"

bench: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/python -m bench
