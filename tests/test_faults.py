"""Fault injection through the real SDK clients (ChatOllama, ChatOpenAI) against a loopback
model server that refuses, hangs, rate-limits, fails, sends malformed bodies and cuts streams.

Each case runs a three-subtask workflow in which one model is faulty: the right fallback must be
taken, with the right error kind, and every other subtask's result kept.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.spec import load_spec
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator
from tests.servers.loopback import free_port
from tests.servers.model_server import ModelServer

pytestmark = pytest.mark.integration

MODELS = ["planner", "review-a", "review-b", "debug-a", "debug-b", "docs-a", "docs-b"]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({name: "canned" for name in MODELS}) as running:
        yield running


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def write_spec(tmp_path: Path, protocol: str, primary_url: str, backup_url: str, retries: int = 2) -> Path:
    """Primary models on one provider, backups on another (they may be the same server)."""
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    kind, suffix = ("ollama", "") if protocol == "ollama" else ("openai", "/v1")
    providers = (
        f"{{primary: {{kind: {kind}, base_url: '{primary_url}{suffix}'}}, "
        f"backup: {{kind: {kind}, base_url: '{backup_url}{suffix}'}}}}"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: faults
            goal: Review, debug and document app.py.
            workspace: ws
            providers: {providers}
            tasks:
              - {{role: architecture_review, instruction: review}}
              - {{role: debug, instruction: debug}}
              - {{role: arabic_docs, instruction: document}}
            models:
              planner: backup/planner
              architecture_review: [primary/review-a, backup/review-b]
              debug: [primary/debug-a, backup/debug-b]
              arabic_docs: [primary/docs-a, backup/docs-b]
            roles:  # one structured call each (the tool loop has its own tests): its repair is tested here
              architecture_review: {{tools: []}}
              debug: {{tools: []}}
            limits: {{timeout_s: 1.5, backoff_s: 0.05, retries: {retries}, max_wait_s: 5, cooldown_after: 10}}
            fail_on: none
            """
        )
    )
    return spec


def run(spec: Path, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out"))
    return outcome.exit_code, outcome.result.model_dump(mode="json"), (tmp_path / "out" / "report.md").read_text()


def by_role(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["role"]: s for s in result["subtasks"]}


def assert_others_kept(result: dict[str, Any]) -> None:
    subs = by_role(result)
    for role, model in (("debug", "primary/debug-a"), ("arabic_docs", "primary/docs-a")):
        assert subs[role]["status"] == "ok" and subs[role]["model"] == model and subs[role]["output"]
    assert result["aggregate"]["status"] == "ok"


PROTOCOLS = ["ollama", "openai"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("fault", "kwargs", "kind"),
    [
        ("close", {}, "unavailable"),  # the connection drops with no response
        ("status", {"status": 500}, "unavailable"),
        ("status", {"status": 503}, "unavailable"),
        ("malformed", {}, "unavailable"),  # a 200 whose body is not JSON
    ],
)
def test_transient_faults_are_retried_then_fall_back(
    server: ModelServer, tmp_path: Path, protocol: str, fault: str, kwargs: dict[str, Any], kind: str
) -> None:
    server.fault(fault, model="review-a", times=99, **kwargs)
    code, result, report = run(write_spec(tmp_path, protocol, server.url, server.url), tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["status"] == "ok" and review["model"] == "backup/review-b"
    (hop,) = review["fallbacks"]
    assert hop["error_kind"] == kind and hop["attempts"] == 3 and hop["waited_s"] > 0
    assert server.state.requests["review-a"] == 3  # 1 + 2 retries, no more
    assert_others_kept(result)
    assert "## Fallbacks taken" in report and "primary/review-a" in report


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_hung_host_times_out_and_falls_back(server: ModelServer, tmp_path: Path, protocol: str) -> None:
    server.fault("hang", model="review-a", times=99, hang_s=4)
    spec = write_spec(tmp_path, protocol, server.url, server.url, retries=1)
    started = time.monotonic()
    code, result, _ = run(spec, tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "backup/review-b"
    assert review["fallbacks"][0]["error_kind"] == "timeout" and review["fallbacks"][0]["attempts"] == 2
    assert time.monotonic() - started < 15  # two timeouts of 1.5 s, not two hangs of 4 s each... plus slack
    assert_others_kept(result)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_passing_rate_limit_is_retried_on_the_same_model(server: ModelServer, tmp_path: Path, protocol: str) -> None:
    server.fault("status", model="review-a", times=1, status=429, retry_after=0.4)
    code, result, report = run(write_spec(tmp_path, protocol, server.url, server.url), tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "primary/review-a" and review["fallbacks"] == []
    assert review["attempts"] == 2
    if protocol == "openai":  # the OpenAI SDK keeps the response headers: Retry-After is honoured
        assert review["waited_s"] >= 0.4
    assert "## Retries" in report


def test_retry_after_beyond_max_wait_falls_back_at_once(server: ModelServer, tmp_path: Path) -> None:
    server.fault("status", model="review-a", times=99, status=429, retry_after=600)
    code, result, _ = run(write_spec(tmp_path, "openai", server.url, server.url), tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "backup/review-b"
    assert review["fallbacks"][0]["attempts"] == 1 and review["fallbacks"][0]["status"] == 429
    assert server.state.requests["review-a"] == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fall_back_at_once(server: ModelServer, tmp_path: Path, protocol: str, status: int) -> None:
    server.fault("status", model="*", times=99, status=status)  # the whole primary host refuses
    with ModelServer({name: "canned" for name in MODELS}) as other:
        code, result, report = run(write_spec(tmp_path, protocol, server.url, other.url), tmp_path)
    assert code == 0
    for sub in result["subtasks"]:
        assert sub["model"].startswith("backup/")
        assert sub["fallbacks"][0]["error_kind"] in ("config", "cooldown")
    # credentials are refused once per call in flight, then the provider is cooled down
    assert sum(server.state.requests.values()) <= 3
    assert "config" in report


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_not_found_falls_back_at_once(server: ModelServer, tmp_path: Path, protocol: str) -> None:
    spec = write_spec(tmp_path, protocol, server.url, server.url)
    spec.write_text(spec.read_text().replace("primary/review-a", "primary/no-such-model"))
    code, result, _ = run(spec, tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "backup/review-b"
    hop = review["fallbacks"][0]
    assert hop["error_kind"] == "config" and hop["status"] == 404 and hop["attempts"] == 1


def test_a_truncated_stream_is_retried(server: ModelServer, tmp_path: Path) -> None:
    server.fault("truncate", model="review-a", times=1)
    code, result, _ = run(write_spec(tmp_path, "ollama", server.url, server.url), tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "primary/review-a" and review["attempts"] == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_invalid_model_output_gets_one_repair(server: ModelServer, tmp_path: Path, protocol: str) -> None:
    server.fault("invalid_json", model="review-a", times=1)
    code, result, _ = run(write_spec(tmp_path, protocol, server.url, server.url), tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "primary/review-a" and review["fallbacks"] == []
    assert server.state.requests["review-a"] == 2  # the answer and its repair


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_output_invalid_after_repair_falls_back(server: ModelServer, tmp_path: Path, protocol: str) -> None:
    server.fault("invalid_json", model="review-a", times=2)
    code, result, _ = run(write_spec(tmp_path, protocol, server.url, server.url), tmp_path)
    review = by_role(result)["architecture_review"]
    assert code == 0 and review["model"] == "backup/review-b"
    assert review["fallbacks"][0]["error_kind"] == "invalid_output"


# ---------------------------------------------------------------- whole hosts down, from the CLI


def cli(spec: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return orchestrator("run", spec, "--output-dir", out, timeout=300)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_first_model_of_every_role_down_finishes_on_fallbacks_with_exit_0(
    server: ModelServer, tmp_path: Path, protocol: str
) -> None:
    spec = write_spec(tmp_path, protocol, closed_url(), server.url)
    done = cli(spec, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    report = (tmp_path / "out" / "report.md").read_text()
    for sub in result["subtasks"]:
        assert sub["status"] == "ok" and sub["model"].startswith("backup/")
        assert sub["fallbacks"][0]["model"].startswith("primary/")
        assert f"{sub['id']}: `{sub['fallbacks'][0]['model']}` failed" in report  # each fallback named


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_model_down_exits_3_with_a_report_that_says_so(tmp_path: Path, protocol: str) -> None:
    spec = write_spec(tmp_path, protocol, closed_url(), closed_url())
    done = cli(spec, tmp_path / "out")
    assert done.returncode == 3, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "provider_failure"
    assert all(s["status"] == "failed" and len(s["fallbacks"]) == 2 for s in result["subtasks"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failures" in report and "every model failed" in report
    assert "aggregation failed" in report
    assert "provider_failure (exit 3)" in done.stderr
