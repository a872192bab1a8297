"""Durable and economical runs: resume after SIGKILL, Ctrl-C and a budget stop without re-running
finished subtasks; the result cache; the run ledger and pruning; safe checkpoint loading;
accounting per model, role and node."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.process import orchestrator
from tests.servers.model_server import ModelServer

MODELS = ["planner", "review", "debug", "docs"]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({name: "canned" for name in MODELS}) as running:
        yield running


def write_spec(tmp_path: Path, url: str, limits: str = "") -> Path:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "x").write_text("x = 1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: durable
            goal: Review, debug and document.
            workspace: ws
            providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
            tasks:
              - {{role: architecture_review, instruction: review}}
              - {{role: debug, instruction: debug}}
              - {{role: arabic_docs, instruction: document}}
            models: {{planner: api/planner, architecture_review: api/review, debug: api/debug, arabic_docs: api/docs}}
            limits: {{timeout_s: 120, backoff_s: 0.05{limits}}}
            fail_on: none
            """
        )
    )
    return spec


def result_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text())


def run_id_of(stderr: str) -> str:
    first = next(line for line in stderr.splitlines() if line.startswith(("run ", "resuming ")))
    return first.split()[1].rstrip(":")


def start(spec: Path, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(spec), "--output-dir", str(out), *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "1"},
    )


def wait_for(process: subprocess.Popen[str], prefix: str, timeout: float = 60) -> list[str]:
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError("".join(seen))


def test_a_killed_run_resumes_without_rerunning_finished_subtasks(server: ModelServer, tmp_path: Path) -> None:
    server.fault("hang", model="review", times=1, hang_s=30)
    spec = write_spec(tmp_path, server.url)
    process = start(spec, tmp_path / "out", "--no-cache")
    seen = wait_for(process, "ok arabic_docs")
    if not any(line.startswith("ok debug") for line in seen):
        seen += wait_for(process, "ok debug")
    run_id = run_id_of("".join(seen))
    time.sleep(1.0)  # the progress line comes as a node returns; its checkpoint write lands just after
    process.kill()  # SIGKILL: no cleanup, no partial report; only the checkpoint survives
    process.wait(timeout=30)
    assert server.state.requests["debug"] == 1 and server.state.requests["docs"] == 1
    listed = json.loads(orchestrator("runs", "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "running")]

    resumed = orchestrator("resume", run_id, "--no-cache")
    assert resumed.returncode == 0, resumed.stderr
    assert server.state.requests["debug"] == 1 and server.state.requests["docs"] == 1  # not run again
    assert server.state.requests["review"] == 2  # the hung call, then the resumed one
    result = result_of(tmp_path / "out")
    assert result["run_id"] == run_id and result["status"] == "ok"
    assert sorted(s["role"] for s in result["subtasks"]) == ["arabic_docs", "architecture_review", "debug"]
    assert result["aggregate"]["status"] == "ok"
    assert json.loads(orchestrator("runs", "--json").stdout)[0]["status"] == "ok"


def test_ctrl_c_exits_130_with_a_checkpoint_and_resumes(server: ModelServer, tmp_path: Path) -> None:
    server.fault("hang", model="review", times=1, hang_s=30)
    spec = write_spec(tmp_path, server.url)
    process = start(spec, tmp_path / "out", "--no-cache")
    seen = wait_for(process, "ok debug")
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, rest
    run_id = run_id_of("".join(seen))
    assert f"orchestrator resume {run_id}" in rest
    assert result_of(tmp_path / "out")["status"] == "interrupted"
    before = dict(server.state.requests)
    resumed = orchestrator("resume", run_id, "--no-cache")
    assert resumed.returncode == 0, resumed.stderr
    assert server.state.requests["debug"] == before["debug"]  # finished before Ctrl-C: not asked again
    assert result_of(tmp_path / "out")["status"] == "ok"


def test_a_budget_stop_resumes_to_completion_with_a_larger_budget(server: ModelServer, tmp_path: Path) -> None:
    server.state.canned_usage = (2000, 500)  # every answer reports 2500 tokens
    spec = write_spec(tmp_path, server.url, limits=", max_tokens: 5500, max_output_tokens: 600, concurrency: 1")
    first = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--no-cache")
    assert first.returncode == 4, first.stderr
    stopped = result_of(tmp_path / "out")
    assert stopped["status"] == "budget_exceeded" and stopped["pending"]
    done_before = {s["id"] for s in stopped["subtasks"]}
    assert len(done_before) == 2  # 2 x 2500 spent; a third call's worst case (~900) would pass 5500
    calls_before = sum(server.state.requests.values())
    run_id = stopped["run_id"]
    resumed = orchestrator("resume", run_id, "--set", "limits.max_tokens=100000", "--no-cache")
    assert resumed.returncode == 0, resumed.stderr
    finished = result_of(tmp_path / "out")
    assert finished["status"] == "ok" and len(finished["subtasks"]) == 3 and finished["aggregate"]
    # only what had not run is asked now: the remaining subtasks and the aggregation
    assert sum(server.state.requests.values()) - calls_before == 3 - len(done_before) + 1
    assert finished["budget"]["spent_tokens"] > stopped["budget"]["spent_tokens"]
    # the subtask the budget paused waited from the pause to the resume, on the run's one clock
    (paused,) = [s for s in finished["subtasks"] if s["id"] not in done_before]
    (wait,) = [span for span in paused["timing"]["spans"] if span["name"] == "budget"]
    assert wait["kind"] == "wait" and wait["started_ms"] + wait["duration_ms"] <= paused["timing"]["started_ms"] + 5
    assert finished["clock_origin"] == stopped["clock_origin"]


def test_a_second_identical_run_makes_no_model_call(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)
    assert orchestrator("run", spec, "--output-dir", tmp_path / "a").returncode == 0
    calls = sum(server.state.requests.values())
    assert calls == 4
    again = orchestrator("run", spec, "--output-dir", tmp_path / "b")
    assert again.returncode == 0, again.stderr
    assert sum(server.state.requests.values()) == calls  # all four answers came from the cache
    result = result_of(tmp_path / "b")
    assert all(s["cached"] for s in [*result["subtasks"], result["aggregate"]])
    assert result["totals"]["cached_calls"] == 4 and result["totals"]["tokens_in"] == 0
    assert "(cached)" in (tmp_path / "b" / "report.md").read_text()
    no_cache = orchestrator("run", spec, "--output-dir", tmp_path / "c", "--no-cache")
    assert no_cache.returncode == 0 and sum(server.state.requests.values()) == calls + 4


def test_errors_are_never_cached(server: ModelServer, tmp_path: Path) -> None:
    server.fault("status", model="review", times=99, status=500)
    spec = write_spec(tmp_path, server.url, limits=", retries: 0")
    assert orchestrator("run", spec, "--output-dir", tmp_path / "a").returncode == 3
    server.state.faults.clear()
    again = orchestrator("run", spec, "--output-dir", tmp_path / "b")
    assert again.returncode == 0  # the failed call was asked again, not served from the cache
    review = next(s for s in result_of(tmp_path / "b")["subtasks"] if s["role"] == "architecture_review")
    assert review["status"] == "ok" and not review["cached"]


def test_runs_prune_deletes_old_checkpoints(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)
    assert orchestrator("run", spec, "--output-dir", tmp_path / "a").returncode == 0
    (entry,) = json.loads(orchestrator("runs", "--json").stdout)
    checkpoints = Path(entry["checkpoint"])
    count = "SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?"
    with sqlite3.connect(checkpoints) as db:
        assert db.execute(count, (entry["run_id"],)).fetchone()[0] > 0
    assert "pruned 0 run(s)" in orchestrator("runs", "prune", "--older-than", "7d").stdout
    time.sleep(1.1)
    pruned = orchestrator("runs", "prune", "--older-than", "0m")
    assert pruned.returncode == 0 and "pruned 1 run(s)" in pruned.stdout
    assert json.loads(orchestrator("runs", "--json").stdout) == []
    with sqlite3.connect(checkpoints) as db:
        assert db.execute(count, (entry["run_id"],)).fetchone()[0] == 0


def test_checkpoint_and_cache_hold_no_secret(server: ModelServer, tmp_path: Path) -> None:
    secret = "sk-test-SECRET-0123456789abcdef"
    spec = write_spec(tmp_path, server.url)
    spec.write_text(spec.read_text().replace("base_url: '", "api_key_env: TEST_API_KEY, base_url: '"))
    env = {"TEST_API_KEY": secret, "ORCHESTRATOR_TRUSTED_KEYS": "TEST_API_KEY"}  # the operator names the key
    done = orchestrator("run", spec, "--output-dir", tmp_path / "a", env=env)
    assert done.returncode == 0, done.stderr
    data = Path(os.environ["ORCHESTRATOR_DATA_DIR"])
    files = list(data.rglob("*")) + list(Path(os.environ["XDG_STATE_HOME"]).rglob("*"))
    assert any(f.name == "checkpoints.sqlite" for f in files) and any(f.name == "cache.sqlite" for f in files)
    for file in files:
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file


BUILT: list[str] = []


@dataclass
class Boom:
    """A type outside LangGraph's allowlist: building one on load would run foreign code."""

    name: str = "boom"

    def __post_init__(self) -> None:
        BUILT.append(self.name)


def test_checkpoints_load_in_strict_msgpack_mode() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from orchestrator.runtime.checkpoints import strict_serde

    tampered = JsonPlusSerializer(allowed_msgpack_modules=True).dumps_typed({"x": Boom()})
    BUILT.clear()
    assert JsonPlusSerializer(allowed_msgpack_modules=True).loads_typed(tampered)["x"] == Boom()  # permissive: built
    BUILT.clear()
    loaded = strict_serde().loads_typed(tampered)
    assert BUILT == []  # strict: the foreign type was not instantiated
    assert not isinstance(loaded.get("x"), Boom)
    assert strict_serde().loads_typed(strict_serde().dumps_typed({"results": [{"a": 1}]})) == {"results": [{"a": 1}]}


def test_accounting_per_model_role_and_node_with_an_hourly_rate(server: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, server.url)
    spec.write_text(spec.read_text().replace("base_url: '", "usd_per_hour: 3600, base_url: '"))  # $1 a second
    done = orchestrator("run", spec, "--output-dir", tmp_path / "a", "--no-cache")
    assert done.returncode == 0
    totals = result_of(tmp_path / "a")["totals"]
    assert set(totals["by_role"]) == {"architecture_review", "debug", "arabic_docs", "aggregate"}
    assert totals["by_model"]["api/review"]["calls"] == 1
    assert set(totals["by_node"]) >= {"architecture_review", "aggregate"}
    expected = sum(c["latency_ms"] for c in totals["by_model"].values()) / 1000  # seconds at $1/s
    assert totals["cost_usd"] == pytest.approx(expected, rel=0.2, abs=0.05)
    assert "cost $" in done.stderr and "usd_per_hour" in totals["cost_note"]


@pytest.mark.integration  # an in-process run against a real loopback HTTP server
def test_a_run_started_from_python_is_listed_and_resumed_by_the_cli(server: ModelServer, tmp_path: Path) -> None:
    from orchestrator import ExitStatus, RunOptions, load_spec, prepare_workflow, run_workflow

    server.state.canned_usage = (2000, 500)  # every answer reports 2500 tokens
    spec = write_spec(tmp_path, server.url, limits=", max_tokens: 5500, max_output_tokens: 600, concurrency: 1")
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", cache=False))
    assert outcome.exit_code == ExitStatus.BUDGET_EXCEEDED and outcome.result.pending
    listed = json.loads(orchestrator("runs", "--json").stdout)
    assert [(r["run_id"], r["status"], r["exit_code"]) for r in listed] == [(outcome.run_id, "budget_exceeded", 4)]
    assert Path(listed[0]["checkpoint"]).is_file()  # durable by default, like a CLI run
    calls_before = sum(server.state.requests.values())
    resumed = orchestrator("resume", outcome.run_id, "--set", "limits.max_tokens=100000", "--no-cache")
    assert resumed.returncode == 0, resumed.stderr
    finished = result_of(tmp_path / "out")  # the outputs go where the Python run put them
    assert finished["run_id"] == outcome.run_id and finished["status"] == "ok" and len(finished["subtasks"]) == 3
    assert sum(server.state.requests.values()) - calls_before == 3 - len(outcome.result.subtasks) + 1
    assert json.loads(orchestrator("runs", "--json").stdout)[0]["status"] == "ok"


def test_a_sigkill_right_after_subtasks_finished_runs_none_of_them_again(server: ModelServer, tmp_path: Path) -> None:
    """No sleep before the kill: a subtask is durable before the next one starts (concurrency 1)."""
    server.state.delay_s = 0.5  # a slow host
    spec = write_spec(tmp_path, server.url, limits=", concurrency: 1")
    process = start(spec, tmp_path / "out", "--no-cache")
    seen: list[str] = []
    while sum(line.startswith("ok ") for line in seen) < 2:
        seen += wait_for(process, "ok ")
    seen += wait_for(process, "> ")  # the third subtask has started: the first two are on disk
    process.kill()
    process.wait(timeout=30)
    finished = {line.split()[1].split("[")[0] for line in seen if line.startswith("ok ")}
    model_of = {"architecture_review": "review", "debug": "debug", "arabic_docs": "docs"}
    asked = {model_of[role]: server.state.requests[model_of[role]] for role in finished}
    assert len(asked) == 2 and set(asked.values()) == {1}
    resumed = orchestrator("resume", run_id_of("".join(seen)), "--no-cache")
    assert resumed.returncode == 0, resumed.stderr
    assert {model: server.state.requests[model] for model in asked} == asked  # not one asked again
    result = result_of(tmp_path / "out")
    assert result["status"] == "ok" and len(result["subtasks"]) == 3


def test_sigterm_keeps_every_finished_subtask_in_the_partial_result(server: ModelServer, tmp_path: Path) -> None:
    server.state.delay_s = 0.3
    for attempt in range(3):  # the race was rare (1 run in 8): try it a few times
        out = tmp_path / f"out{attempt}"
        spec = write_spec(tmp_path, server.url, limits=", concurrency: 1")
        process = start(spec, out, "--no-cache")
        seen = wait_for(process, "ok ")
        seen += wait_for(process, "ok ")
        process.send_signal(signal.SIGTERM)  # at once, as the second subtask returns
        _, rest = process.communicate(timeout=60)
        assert process.returncode == 143, rest
        printed = {
            line.split()[1].split("[")[1].rstrip("]") for line in seen + rest.splitlines() if line.startswith("ok ")
        }
        kept = {s["id"] for s in result_of(out)["subtasks"] if s["status"] == "ok"}
        assert printed <= kept, (printed, kept)


def test_a_checkpoint_below_a_file_is_a_checkpoint_error_before_any_call(server: ModelServer, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file\n")
    done = orchestrator("run", write_spec(tmp_path, server.url), "--checkpoint", blocker / "run.db")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "not-a-folder" in done.stderr
    assert sum(server.state.requests.values()) == 0
