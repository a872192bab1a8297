"""The command line: exit codes from real subprocesses, fast start, stdout/stderr discipline."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.testing import FakeProvider, valid_answer
from tests.process import modules_imported_by, orchestrator
from tests.servers.loopback import free_port

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart" / "spec.yaml"
SDKS = ("langchain_openai", "langchain_ollama", "openai", "ollama", "llama_cpp", "llm")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return orchestrator(*args, env=env, cwd=cwd, timeout=300)


def imported_after(argv: list[str]) -> set[str]:
    """Top-level modules imported by running the CLI in a fresh interpreter."""
    return {m.split(".")[0] for m in modules_imported_by(argv)}


def test_help_imports_no_provider_sdk_and_no_langgraph() -> None:
    modules = imported_after(["--help"])
    assert not modules & {*SDKS, "langgraph", "langchain_core", "pydantic"}


def test_validate_imports_no_provider_sdk() -> None:
    modules = imported_after(["validate", str(QUICKSTART)])
    assert "orchestrator" in modules and not modules & {*SDKS, "langgraph", "langchain_core"}


def test_validate_broken_spec_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nname: bad\ngoal: g\nlimits:\n  concurency: 2\nmodels:\n  refactor: qwen3-codr\n")
    done = cli("validate", str(spec))
    assert done.returncode == 2
    assert f"{spec}:5: limits.concurency: unknown field" in done.stderr
    assert "did you mean 'concurrency'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_validate_unknown_model_exits_2_with_suggestion(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nname: bad\ngoal: g\nmodels:\n  refactor: qwen3-codr\n")
    done = cli("validate", str(spec))
    assert done.returncode == 2
    assert f"{spec}:5: models.refactor:" in done.stderr and "did you mean 'qwen3-coder'" in done.stderr


def test_run_with_a_spec_error_exits_2_and_calls_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nname: bad\n")
    done = cli("run", str(spec), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 2 and "goal: required field is missing" in done.stderr
    assert not (tmp_path / "out").exists()


def test_bad_set_override_exits_2() -> None:
    done = cli("validate", str(QUICKSTART), "--set", "limits.concurrency=lots")
    assert done.returncode == 2 and "--set: limits.concurrency" in done.stderr


def test_validate_ok_prints_chains() -> None:
    done = cli("validate", str(QUICKSTART))
    assert done.returncode == 0, done.stderr
    assert "refactor: local/smollm2" in done.stdout


def test_unreachable_provider_exits_3_with_the_report_written(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.py").write_text("x = 1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: down\ngoal: review\nworkspace: ws\n"
        f"providers: {{ollama: {{base_url: 'http://127.0.0.1:{free_port()}'}}}}\n"
        "models: {default: ollama/qwen3:8b, planner: ollama/qwen3:8b}\n"
        "limits: {timeout_s: 10, backoff_s: 0.05, retries: 2, cooldown_after: 3}\n"
    )
    done = cli("run", str(spec), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "provider_failure" and result["plan"]["source"] == "fallback"
    # the planner tried 3 times (1 + 2 retries), then the host was cooled down: no request storm
    (planner_hop,) = result["plan"]["call"]["fallbacks"]
    assert planner_hop["error_kind"] == "unavailable" and planner_hop["attempts"] == 3 and planner_hop["waited_s"] > 0
    assert len(result["subtasks"]) == 4
    assert all(s["fallbacks"][0]["error_kind"] == "cooldown" for s in result["subtasks"])
    assert all(s["fallbacks"][0]["attempts"] <= 1 for s in result["subtasks"])
    assert (tmp_path / "out" / "report.md").exists()


def test_policy_leaving_no_model_exits_5(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: secret\ngoal: g\npolicy: {data_class: confidential}\n"
        "models: {refactor: openrouter/qwen/qwen3.6-plus:free}\n"
    )
    for command in ("validate", "run"):
        done = cli(command, str(spec))
        assert done.returncode == 5, done.stderr
        assert "refactor" in done.stderr and "confidential" in done.stderr


def test_dry_run_prints_the_resolved_workflow_and_calls_no_model() -> None:
    done = cli("run", str(QUICKSTART), "--dry-run")
    assert done.returncode == 0
    info = json.loads(done.stdout)
    assert info["chains"]["debug"] == ["local/smollm2"] and len(info["tasks"]) == 4


def test_models_filters_the_catalog() -> None:
    done = cli("models", "--country", "AE", "--json")
    entries = json.loads(done.stdout)
    assert entries and {e["country"] for e in entries} == {"AE"}
    assert any("jais" in e["id"] for e in entries)
    table = cli("models", "--strength", "arabic").stdout
    assert "jais" in table and "qwen3-coder" not in table


def test_schema_is_a_json_schema_of_the_spec() -> None:
    schema = json.loads(cli("schema").stdout)
    assert schema["title"] == "Sovereign Orchestrator spec"
    assert {"goal", "models", "tasks", "limits"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_graph_show_prints_mermaid() -> None:
    done = cli("graph", "show", "coding-workflow")
    assert done.returncode == 0
    for node in ("plan", "architecture_review", "refactor", "debug", "arabic_docs", "aggregate"):
        assert node in done.stdout
    assert done.stdout.startswith("---") or "graph TD" in done.stdout


# ---------------------------------------------------------------- in-process, fake models

FAKE_SPEC = """version: 1
name: cli-fake
goal: Review the app.
workspace: ws
providers: {fake: {kind: fake}}
models: {default: fake/m}
tasks: [{role: architecture_review, instruction: review}]
fail_on: medium
"""


@pytest.fixture
def fake_spec(fake: FakeProvider, tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "app.py").write_text("x = 1\n")
    fake.script("m", valid_answer)  # one medium finding
    spec = tmp_path / "spec.yaml"
    spec.write_text(FAKE_SPEC)
    return spec


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_quality_gate_exit_1_and_0(fake_spec: Path, tmp_path: Path) -> None:
    gated = invoke("run", fake_spec, "--output-dir", tmp_path / "a", "--quiet")
    assert gated.exit_code == 1
    passed = invoke("run", fake_spec, "--output-dir", tmp_path / "b", "--quiet", "--set", "fail_on=high")
    assert passed.exit_code == 0
    assert json.loads((tmp_path / "b" / "result.json").read_text())["exit_code"] == 0


def test_format_json_without_output_dir_prints_only_json_to_stdout(fake_spec: Path, tmp_path: Path) -> None:
    done = invoke("run", fake_spec, "--format", "json", "--set", "fail_on=none")
    assert done.exit_code == 0
    result = json.loads(done.stdout)  # stdout is exactly the result document
    assert result["status"] == "ok" and result["subtasks"][0]["role"] == "architecture_review"
    assert not (tmp_path / "out").exists()


def test_progress_lines_go_to_stderr(fake_spec: Path, tmp_path: Path) -> None:
    done = invoke("run", fake_spec, "--output-dir", tmp_path / "o", "--set", "fail_on=none")
    assert done.stdout == ""
    assert "ok architecture_review[t1] fake/m" in done.stderr
    assert "done: ok (exit 0)" in done.stderr


@pytest.mark.parametrize(
    "spec",
    sorted(p for p in (REPO / "examples").rglob("*.yaml") if re.search(r"^goal:", p.read_text(), re.MULTILINE)),
    ids=lambda p: str(p.relative_to(REPO / "examples")),
)
def test_every_example_spec_validates(spec: Path) -> None:
    done = cli("validate", str(spec))
    assert done.returncode == 0, done.stderr
