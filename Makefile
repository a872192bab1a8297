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

.PHONY: quickstart test check lint types unit bench postgres chromium sandbox netns

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

test: $(BIN)/python postgres chromium sandbox netns
	$(BIN)/pip install --quiet -e ".[test]"
	@$(LLAMA_CHECK)
	$(MAKE) check

# Debian packages the tests need, installed when missing (a stale package list is refreshed once)
APT_INSTALL = apt-get install -y -q --no-install-recommends
define apt
{ echo "installing $(1) $(2)"; $(APT_INSTALL) $(1) >/dev/null 2>&1 || \
  { apt-get update -q >/dev/null && $(APT_INSTALL) $(1) >/dev/null; }; }
endef

# the Postgres checkpoint tests start their own server from the machine's PostgreSQL binaries
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  $(call apt,postgresql,for the checkpoint tests)

# the HTML report tests render report.html in a real headless Chromium (Debian's package)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  $(call apt,chromium fonts-dejavu-core,for the HTML report tests)

# checks of proposed patches run in a bubblewrap sandbox (verify.sandbox: required in CI); the Ray
# cluster test puts its nodes in a network namespace of their own (unshare, and ip from iproute2)
sandbox:
	@command -v bwrap >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  $(call apt,bubblewrap,for the sandboxed checks)
	@command -v bwrap >/dev/null 2>&1 || echo "no bubblewrap here: checks run unsandboxed (verify.sandbox: preferred)"

netns:
	@command -v ip >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  $(call apt,iproute2,for the Ray cluster test)

# two workers on a 2-core machine: the suite waits on subprocesses and servers as much as it computes
TEST_WORKERS ?= 2
check: lint types
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

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

# the reference in docs/reference/ is generated from the code (tests/test_reference.py checks it)
.PHONY: docs
docs:
	$(BIN)/python -m orchestrator.cli._reference
