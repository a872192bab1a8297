"""Both provider protocols for real, on loopback, with the embedded weights behind them:

- OpenAI-compatible: llama-cpp-python's own server (`python -m llama_cpp.server`), reached
  through langchain-openai. It rejects `json_schema`, so the run must negotiate down to JSON
  mode with the schema attached (grammar) and still produce validated outputs.
- Ollama: the project's Ollama-API-compatible test server backed by the embedded model,
  reached through langchain-ollama with `format` JSON schemas and streaming.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.providers._llama import weights_path
from orchestrator.spec import builtin_roles
from orchestrator.spec.kinds import OUTPUT_MODELS
from tests.process import orchestrator
from tests.servers.loopback import free_port
from tests.servers.model_server import ModelServer

pytestmark = [pytest.mark.integration, pytest.mark.embedded]
REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "examples" / "quickstart" / "project"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w")  # a pipe nobody reads would fill
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(weights_path()), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def project_copy(tmp_path: Path) -> Path:
    """The quickstart's project beside a test's spec (a workspace stays inside its spec's folder)."""
    target = tmp_path / "project"
    if not target.exists():
        shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns(".*"))
    return target


def write_spec(tmp_path: Path, provider: str, model: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: real-server
            goal: Find why test_new_store_is_empty fails and review the store.
            workspace: {project_copy(tmp_path)}
            include: ["inventory/*.py", "tests/*.py"]
            providers: {{{provider}}}
            tasks:
              - {{role: debug, instruction: Find why test_new_store_is_empty fails., files: [inventory/store.py]}}
              - {{role: architecture_review, instruction: Review the store., files: [inventory/store.py]}}
            models: {{default: {model}}}
            limits: {{timeout_s: 120, max_output_tokens: 1024, max_turns: 2}}
            fail_on: none
            """
        )
    )
    return spec


def run_cli(spec: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return orchestrator("run", spec, "--output-dir", out)


def assert_structured(result: dict[str, Any], model: str) -> None:
    kinds = {name: role.output for name, role in builtin_roles().items()}
    assert len(result["subtasks"]) == 2
    for call in [*result["subtasks"], result["aggregate"]]:
        assert call["status"] == "ok", call.get("error")
        assert call["model"] == model and call["tokens_out"] > 0
        OUTPUT_MODELS[kinds[call["role"]]].model_validate(call["output"])


def test_workflow_through_langchain_openai_against_llama_cpp_server(llama_server: str, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, f"llamacpp: {{kind: openai, base_url: '{llama_server}', compact_output: true}}", "llamacpp/smollm2"
    )
    done = run_cli(spec, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert_structured(result, "llamacpp/smollm2")
    # the server refused json_schema; the run stepped down to JSON mode with the schema attached
    assert {c["structured_mode"] for c in [*result["subtasks"], result["aggregate"]]} == {"grammar"}


def test_workflow_through_langchain_ollama_against_the_ollama_compatible_server(tmp_path: Path) -> None:
    with ModelServer({"smollm2:135m": "embedded"}) as server:
        spec = write_spec(
            tmp_path, f"ollama: {{base_url: '{server.url}', compact_output: true}}", "ollama/smollm2:135m"
        )
        done = run_cli(spec, tmp_path / "out")
        requests = server.state.requests["smollm2:135m"]
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert_structured(result, "ollama/smollm2:135m")
    assert requests >= 3  # two subtasks and the aggregation went through the server


def test_models_check_lists_what_each_server_serves(llama_server: str, tmp_path: Path) -> None:
    with ModelServer({"smollm2:135m": "canned"}) as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                name: check
                goal: g
                workspace: {project_copy(tmp_path)}
                providers:
                  ollama: {{base_url: '{server.url}'}}
                  llamacpp: {{kind: openai, base_url: '{llama_server}'}}
                models:
                  planner: llamacpp/smollm2
                  debug: [ollama/missing:1b, ollama/smollm2:135m]
                  refactor: ollama/not-pulled
                """
            )
        )
        done = orchestrator("models", "--check", "--spec", spec, "--json", timeout=120)
    assert done.returncode == 3  # refactor has no reachable model
    report = json.loads(done.stdout)
    providers = {p["name"]: p for p in report["providers"]}
    assert providers["ollama"]["ok"] and "smollm2:135m" in providers["ollama"]["models"]
    assert providers["llamacpp"]["ok"] and "smollm2" in providers["llamacpp"]["models"]
    rows = {(r["role"], r["model"]): r for r in report["roles"]}
    assert rows[("debug", "ollama/smollm2:135m")]["reachable"]
    assert not rows[("debug", "ollama/missing:1b")]["reachable"]
    assert rows[("planner", "llamacpp/smollm2")]["reachable"]
    assert report["unreachable_roles"] == ["refactor"]
    assert "negotiated" in rows[("planner", "llamacpp/smollm2")]["structured"]
