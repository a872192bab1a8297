"""The CI contract: every exit code from a real subprocess, SARIF and JUnit validated against
their official schemas, result.json against its documented schema, GitHub Actions outputs,
record and replay, and the CI examples."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from ruamel.yaml import YAML

from orchestrator.cli import main
from orchestrator.outputs import result_json_schema
from tests.process import comparable, orchestrator
from tests.servers.model_server import ModelServer

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
MODELS = ["planner", "review", "debug"]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({name: "canned" for name in MODELS}) as running:
        yield running


def write_spec(tmp_path: Path, url: str, extra: str = "", fail_on: str = "none") -> Path:
    """A spec on the canned test server: its findings are `critical` (the schema's first severity)."""
    workspace = tmp_path / "repo" / "service"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "x").write_text("placeholder\n")  # the canned answers name a file 'x' (a schema sample)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: ci
            goal: Review the service.
            workspace: repo/service
            providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
            tasks:
              - {{role: architecture_review, instruction: review}}
              - {{role: debug, instruction: debug}}
            models: {{planner: api/planner, architecture_review: api/review, debug: api/debug}}
            limits: {{timeout_s: 30, backoff_s: 0.05, retries: 1}}
            output: {{formats: [markdown, json, sarif, junit]}}
            fail_on: {fail_on}
            """
        )
        + extra
    )
    return spec


def result_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text())


# ---------------------------------------------------------------- exit codes from a real subprocess


def test_exit_0_when_no_finding_reaches_fail_on(server: ModelServer, tmp_path: Path) -> None:
    done = orchestrator("run", write_spec(tmp_path, server.url), "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert result_of(tmp_path / "out")["status"] == "ok"


@pytest.mark.parametrize(("flag", "code"), [("high", 1), ("critical", 1), ("none", 0)])
def test_fail_on_flag_gates_on_the_highest_severity(server: ModelServer, tmp_path: Path, flag: str, code: int) -> None:
    done = orchestrator("run", write_spec(tmp_path, server.url), "--output-dir", tmp_path / "out", "--fail-on", flag)
    assert done.returncode == code, done.stderr
    result = result_of(tmp_path / "out")
    assert result["max_severity"] == "critical" and result["fail_on"] == flag


def test_exit_2_on_a_spec_error(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nname: x\ngoal: g\nlimits: {max_tokens: -5}\n")
    done = orchestrator("run", spec)
    assert done.returncode == 2 and "limits.max_tokens" in done.stderr


def test_exit_3_when_a_role_has_no_working_model(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "http://127.0.0.1:9")  # nothing listens on port 9
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out")
    assert done.returncode == 3, done.stderr
    assert result_of(tmp_path / "out")["status"] == "provider_failure"


def test_exit_4_when_the_token_budget_would_be_overrun(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url, extra="")
    spec.write_text(spec.read_text().replace("retries: 1}", "retries: 1, max_tokens: 1500, max_output_tokens: 600}"))
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out")
    assert done.returncode == 4, done.stderr
    result = result_of(tmp_path / "out")
    assert result["status"] == "budget_exceeded" and "max_tokens" in result["budget"]["exhausted"]
    assert result["budget"]["spent_tokens"] <= 1500
    assert result["pending"] and all(p["reason"] == "budget" for p in result["pending"])  # resumable
    assert (tmp_path / "out" / "report.md").exists()  # the partial report


def test_exit_4_when_the_cost_budget_would_be_overrun(server: ModelServer, tmp_path: Path) -> None:
    prices = "prices: {api/planner: {input: 100, output: 100}, api/review: {input: 100, output: 100}, "
    prices += "api/debug: {input: 100, output: 100}}\n"
    spec = write_spec(tmp_path, server.url, extra=prices)
    spec.write_text(spec.read_text().replace("retries: 1}", "retries: 1, max_cost_usd: 0.15}"))
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out")
    assert done.returncode == 4, done.stderr
    result = result_of(tmp_path / "out")
    assert result["budget"]["spent_cost_usd"] <= 0.15 and "max_cost_usd" in result["budget"]["exhausted"]


def test_a_cost_budget_needs_prices_for_api_models(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: s\ngoal: g\nlimits: {max_cost_usd: 1}\n"
        "models: {debug: openrouter/some-lab/unpriced-model, refactor: local/smollm2}\n"
    )
    done = orchestrator("validate", spec)
    assert done.returncode == 2 and "prices.openrouter/some-lab/unpriced-model" in done.stderr
    priced = spec.read_text() + "prices: {openrouter/some-lab/unpriced-model: {input: 1.0, output: 2.0}}\n"
    spec.write_text(priced)
    assert orchestrator("validate", spec).returncode == 0  # self-hosted models need no price


def test_exit_5_when_the_policy_leaves_no_model(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: s\ngoal: g\npolicy: {allow_countries: [FR]}\nmodels: {debug: local/smollm2}\n")
    done = orchestrator("run", spec)
    assert done.returncode == 5 and "allow_countries" in done.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_keeping_what_finished(
    server: ModelServer, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    server.fault("hang", model="review", times=1, hang_s=60)  # review hangs; debug answers at once
    spec = write_spec(tmp_path, server.url)
    spec.write_text(spec.read_text().replace("timeout_s: 30", "timeout_s: 120"))
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(spec), "--output-dir", str(tmp_path / "out")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "1"},
    )
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until debug has finished and review is in flight
        line = process.stderr.readline()
        seen.append(line)
        if line.startswith("ok debug"):
            break
    time.sleep(0.5)
    process.send_signal(sig)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == code, "".join(seen) + rest
    result = result_of(tmp_path / "out")
    assert result["status"] == "interrupted" and result["exit_code"] == code  # 143 in both places on SIGTERM
    assert [s["role"] for s in result["subtasks"]] == ["debug"]  # the finished subtask is kept
    assert "partial outputs in" in rest


# ---------------------------------------------------------------- SARIF, JUnit, result.json


@pytest.fixture
def finished(server: ModelServer, tmp_path: Path) -> Path:
    """A run whose outputs are all written; returns the output folder."""
    spec = write_spec(tmp_path, server.url, fail_on="high")
    (tmp_path / "repo" / "service" / "x").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out")
    assert done.returncode == 1, done.stderr
    return tmp_path / "out"


def test_sarif_validates_against_the_official_schema(finished: Path) -> None:
    sarif = json.loads((finished / "findings.sarif").read_text())
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    (run,) = sarif["runs"]
    result = result_of(finished)
    findings = [f for s in result["subtasks"] for f in (s["output"] or {}).get("findings", [])]
    assert len(run["results"]) == len(findings) >= 1
    first = run["results"][0]
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "service/x"  # relative to the repository root
    assert location["region"]["startLine"] == 1
    assert first["level"] == "error" and first["properties"]["model"] == "api/review"
    extension = run["tool"]["extensions"][first["rule"]["toolComponent"]["index"]]
    assert extension["name"] == "api/review"  # the model that produced it, as the tool extension
    assert extension["rules"][first["rule"]["index"]]["id"] == first["ruleId"]


def test_sarif_drops_a_line_the_model_invented(server: ModelServer, tmp_path: Path) -> None:
    done = orchestrator(
        "run", write_spec(tmp_path, server.url), "--output-dir", tmp_path / "out"
    )  # file 'x' has 1 line
    assert done.returncode == 0
    results = json.loads((tmp_path / "out" / "findings.sarif").read_text())["runs"][0]["results"]
    assert all("region" not in r["locations"][0]["physicalLocation"] or
               r["locations"][0]["physicalLocation"]["region"]["startLine"] == 1 for r in results)  # fmt: skip


def test_junit_validates_against_the_jenkins_schema(finished: Path) -> None:
    xml = (finished / "junit.xml").read_text()
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(xml)
    cases = re.findall(r"<testcase ", xml)
    result = result_of(finished)
    assert len(cases) == len(result["subtasks"]) + 1  # one per subtask, and the aggregation
    assert '<failure message="1 finding(s) at or above high" type="quality_gate"' in xml


def test_junit_reports_provider_failures_as_errors(tmp_path: Path) -> None:
    done = orchestrator("run", write_spec(tmp_path, "http://127.0.0.1:9"), "--output-dir", tmp_path / "out")
    assert done.returncode == 3
    xml = (tmp_path / "out" / "junit.xml").read_text()
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(xml)
    assert xml.count('type="provider_failure"') == 3 and 'errors="3"' in xml


def test_result_json_follows_its_documented_schema(finished: Path) -> None:
    published = json.loads(orchestrator("schema", "--result").stdout)
    assert published == json.loads(json.dumps(result_json_schema()))
    jsonschema.Draft202012Validator(published).validate(result_of(finished))


# ---------------------------------------------------------------- GitHub Actions


def test_github_actions_gets_a_step_summary_and_annotations(server: ModelServer, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    done = orchestrator(
        "run", write_spec(tmp_path, server.url, fail_on="high"), "--output-dir", tmp_path / "o", env=env
    )
    assert done.returncode == 1
    annotations = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert annotations and all(a.startswith("::error file=service/x,line=1,title=critical%3A ") for a in annotations)
    text = summary.read_text()
    assert text.startswith("## ci: quality_gate (exit 1)") and "| architecture_review |" in text


def test_stdout_stays_json_when_results_go_there(server: ModelServer, tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}
    done = orchestrator("run", write_spec(tmp_path, server.url, fail_on="high"), "--format", "json", env=env)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "quality_gate"  # annotations went to stderr
    assert "::error file=" in done.stderr


def test_quiet_prints_nothing_but_errors(server: ModelServer, tmp_path: Path) -> None:
    done = orchestrator("run", write_spec(tmp_path, server.url), "--output-dir", tmp_path / "o", "--quiet")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


# ---------------------------------------------------------------- record and replay


def test_a_recorded_run_replays_without_any_provider(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)
    recorded = orchestrator("run", spec, "--output-dir", tmp_path / "a", "--record", tmp_path / "rec")
    assert recorded.returncode == 0, recorded.stderr
    calls = sorted((tmp_path / "rec" / "calls").rglob("*.json"))
    assert len(calls) == sum(server.state.requests.values()) == 3  # two subtasks and the aggregation
    requests_before = sum(server.state.requests.values())
    replayed = orchestrator("run", spec, "--output-dir", tmp_path / "b", "--replay", tmp_path / "rec")
    assert replayed.returncode == 0, replayed.stderr
    assert sum(server.state.requests.values()) == requests_before  # the server was not asked again
    assert comparable(result_of(tmp_path / "a")) == comparable(result_of(tmp_path / "b"))


def test_a_call_missing_from_the_recording_fails_naming_it(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)
    assert orchestrator("run", spec, "--output-dir", tmp_path / "a", "--record", tmp_path / "rec").returncode == 0
    other = ("--set", "tasks.1.instruction=debug it differently")  # the same spec file, asked another thing
    done = orchestrator("run", spec, *other, "--output-dir", tmp_path / "b", "--replay", tmp_path / "rec")
    assert done.returncode == 3
    debug = next(s for s in result_of(tmp_path / "b")["subtasks"] if s["role"] == "debug")
    (hop,) = debug["fallbacks"]
    assert hop["error_kind"] == "not_recorded" and "is not in the recording" in hop["message"]
    assert "debug it differently" in hop["message"]  # the call is named by its last message


def test_a_recording_replays_only_for_the_spec_it_was_made_of(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)
    assert orchestrator("run", spec, "--output-dir", tmp_path / "a", "--record", tmp_path / "rec").returncode == 0
    asked = sum(server.state.requests.values())
    spec.write_text(spec.read_text().replace("instruction: debug", "instruction: debug it differently"))
    done = orchestrator("run", spec, "--output-dir", tmp_path / "b", "--replay", tmp_path / "rec")
    assert done.returncode == 2 and "was made for another spec" in done.stderr
    assert sum(server.state.requests.values()) == asked and not (tmp_path / "b").exists()


def test_replay_of_a_missing_recording_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nname: s\ngoal: g\n")
    done = orchestrator("run", spec, "--replay", tmp_path / "nothing")
    assert done.returncode == 2 and "no recording" in done.stderr


# ---------------------------------------------------------------- the CI examples


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def orchestrator_commands(data: Any) -> list[list[str]]:
    """Every `orchestrator ...` command in a CI file's strings (run steps, scripts, entries)."""
    found = []
    for text in strings(data):
        for line in text.splitlines():
            match = re.search(r"\borchestrator (run|validate|models|schema|graph|publish)\b.*", line)
            if match:
                found.append(shlex.split(match.group(0)))
    return found


def check_documented(argv: list[str]) -> None:
    """The command and every option exist in the CLI (checked against click, nothing is run)."""
    command = main.commands[argv[1]]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in argv[2:]:
        if word.startswith("-"):
            assert word.split("=")[0] in options, f"{argv[1]} has no option {word}"


@pytest.mark.parametrize(
    "name", ["github-actions.yml", "github-publish.yml", "gitlab-ci.yml", "pre-commit-config.yaml"]
)
def test_ci_examples_are_valid_yaml_using_only_the_documented_cli(name: str) -> None:
    data = YAML(typ="safe").load((REPO / "examples" / "ci" / name).read_text())
    commands = orchestrator_commands(data)
    assert commands, "no orchestrator command found"
    for argv in commands:
        check_documented(argv)
    if name == "github-actions.yml":
        steps = [s for job in data["jobs"].values() for s in job["steps"]]
        assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
        assert any("--fail-on high" in s.get("run", "") and "github-review" in s.get("run", "") for s in steps)
        # the untrusted half: no write token for pull requests
        assert "pull-requests" not in json.dumps(data["permissions"])
    if name == "github-publish.yml":
        # the trusted half: it may write pull requests, and never checks out or runs their code
        assert data["permissions"]["pull-requests"] == "write" and "workflow_run" in data["on"]
        steps = [s for job in data["jobs"].values() for s in job["steps"]]
        assert not any(s.get("uses", "").startswith("actions/checkout") for s in steps)
        commands = [c[:5] for c in orchestrator_commands(data) if len(c) > 2]  # not the workflow's name
        assert commands == [["orchestrator", "publish", "review/", "--to", "github"]]
    if name == "gitlab-ci.yml":
        assert data["orchestrator-review"]["artifacts"]["reports"]["junit"] == "out/junit.xml"
        assert "GITLAB_TOKEN" not in json.dumps(data["orchestrator-review"])
        assert data["orchestrator-publish"]["environment"]["name"] == "orchestrator-publish"
