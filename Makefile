# Two commands on a fresh clone (only Python 3.11 needed):
#   make quickstart   install the tool and run the quickstart on the embedded model -> out/
#   make test         install what tests need and run lint, types and the tests
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

# llama-cpp-python compiles llama.cpp from source. Built with -march=native it uses every vector
# extension the CPU advertises, and virtual machines that advertise AMX without enabling it kill
# the process (SIGILL) at the first long prompt. On x86-64 build for AVX2 instead (x86-64-v3).
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
endif
export CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS)
# ...and a wheel built earlier (pip caches it) without those flags is rebuilt when it cannot run here
LLAMA_CHECK = $(BIN)/python -m orchestrator.providers._llama || { \
	echo "llama-cpp-python cannot run on this CPU: rebuilding it with CMAKE_ARGS='$(CMAKE_ARGS)'"; \
	$(BIN)/pip cache remove "llama_cpp_python*" >/dev/null 2>&1; \
	$(BIN)/pip install --quiet --force-reinstall --no-deps "llama-cpp-python>=0.3.7" && \
	$(BIN)/python -m orchestrator.providers._llama; }

.PHONY: quickstart test check lint types unit bench postgres chromium sandbox

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the quickstart's checks run its sample project's tests (`python -m pytest`) with this environment:
# it is the active one (VIRTUAL_ENV), as a developer's activated environment is; checks never pick
# the orchestrator's own environment up from PATH by themselves
quickstart: $(BIN)/python sandbox
	$(BIN)/pip install --quiet . pytest
	@$(LLAMA_CHECK)
	@# exit 1 is the quality gate (a finding at or above fail_on, or a proposed fix not verified)
	VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" \
	  $(BIN)/orchestrator run examples/quickstart/spec.yaml --output-dir out; \
	  code=$$?; [ $$code -le 1 ] || exit $$code

test: $(BIN)/python postgres chromium sandbox
	$(BIN)/pip install --quiet -e ".[test]"
	@$(LLAMA_CHECK)
	$(MAKE) check

# the Postgres checkpoint tests start their own server from the machine's PostgreSQL binaries
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { echo "installing PostgreSQL for the checkpoint tests"; \
	    apt-get install -y -q --no-install-recommends postgresql >/dev/null; }

# the HTML report tests render report.html in a real headless Chromium (Debian's package)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Chromium for the HTML report tests"; \
	    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
# checks of proposed patches run in a bubblewrap sandbox (verify.sandbox: required in CI)
sandbox:
	@command -v bwrap >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  { echo "installing bubblewrap for the sandboxed checks"; \
	    apt-get install -y -q --no-install-recommends bubblewrap >/dev/null; }
	@command -v bwrap >/dev/null 2>&1 || echo "no bubblewrap here: checks run unsandboxed (verify.sandbox: preferred)"

check: lint types
	$(BIN)/pytest

lint:
	$(BIN)/ruff check orchestrator tests bench
	$(BIN)/ruff format --check orchestrator tests bench
	$(BIN)/lint-imports

types:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -m "not integration"

bench: $(BIN)/python sandbox
	$(BIN)/pip install --quiet -e ".[test]"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m bench
