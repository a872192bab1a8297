"""`orchestrator sweep`: many runs at once in one process. Scripted fake models for the library
(the concurrency bound, failures that stay in their row, exit precedence, totals, verified
patches, Ctrl-C), and the real command in a subprocess against a loopback model server (two
specs; one spec over two workspaces), its JSON checked against each run's own result.json."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import ExitStatus, ProviderUnavailable, SpecError
from orchestrator.runtime import ledger, resume_workflow
from orchestrator.runtime.sweep import (
    MAX_RUNS,
    SweepItem,
    SweepResult,
    plan_sweep,
    ranked_exit,
    run_sweep,
    sweep_options,
)
from orchestrator.testing import Call, FakeProvider, valid_answer
from tests.process import modules_imported_by, orchestrator
from tests.servers.model_server import ModelServer
from tests.test_agentic import RIGHT_FIX, WRONG_FIX, diagnosis
from tests.test_agentic import SPEC as AGENTIC_SPEC
from tests.test_agentic import project as agentic_project

WORKSPACE = {"app.py": "def add(a, b):\n    return a - b\n"}


def fake_spec(folder: Path, n: int, extra: str = "", priced: bool = True) -> Path:
    """Spec N: one review on fake/rN, aggregated by fake/pN (each run's calls are its own)."""
    prices = f"prices: {{fake/r{n}: {{input: 1.0, output: 2.0}}, fake/p{n}: {{input: 3.0, output: 4.0}}}}\n"
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    for rel, text in WORKSPACE.items():
        (folder / "ws" / rel).write_text(text)
    spec = folder / f"s{n}.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: s{n}
            goal: Review app.py.
            workspace: ws
            providers: {{fake: {{kind: fake}}}}
            tasks:
              - {{role: architecture_review, instruction: Review app.py., files: [app.py]}}
            models: {{planner: fake/p{n}, architecture_review: fake/r{n}}}
            """
        )
        + (prices if priced else "")
        + extra
    )
    return spec


def prepared(specs: list[Path], workspaces: tuple[Path, ...] = ()) -> list[SweepItem]:
    from orchestrator.spec.operator import load_operator

    return plan_sweep([str(s) for s in specs], workspaces, (), lambda ws: load_operator(None, False, ws))


def sweep(items: list[SweepItem], out: Path, concurrency: int = 4, **fields: Any) -> SweepResult:
    return run_sweep(items, sweep_options(out, **{"checkpoint": "memory", **fields}), concurrency)


def result_of(row: Any) -> dict[str, Any]:
    assert row.result is not None, row
    return dict(json.loads(Path(row.result).read_text()))


# ---------------------------------------------------------------- the library, on scripted models


def test_runs_in_flight_never_exceed_the_concurrency_and_each_has_its_own_folder(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.delay_s = 0.2  # calls overlap whenever runs do
    in_flight: set[int] = set()
    most: list[int] = [0]

    def review(n: int) -> Any:
        def script(call: Call) -> str:
            in_flight.add(n)  # a run is in flight from its first call to its last (the aggregation)
            most[0] = max(most[0], len(in_flight))
            return valid_answer(call)

        return script

    def aggregate(n: int) -> Any:
        def script(call: Call) -> str:
            in_flight.discard(n)
            return valid_answer(call)

        return script

    for n in range(1, 6):
        fake.script(f"r{n}", review(n))
        fake.script(f"p{n}", aggregate(n))
    specs = [fake_spec(tmp_path, n) for n in range(1, 6)]
    result = sweep(prepared(specs), tmp_path / "out", concurrency=2)
    assert most[0] == 2 and fake.peak["*"] <= 2  # the bound was reached, never passed
    assert result.exit_code == 0 and [row.status for row in result.rows] == ["ok"] * 5
    assert [row.label for row in result.rows] == [f"0{n}-s{n}" for n in range(1, 6)]
    assert len({row.run_id for row in result.rows}) == 5
    for n, row in enumerate(result.rows, 1):
        assert row.outputs == str(tmp_path / "out" / f"0{n}-s{n}")
        own = result_of(row)
        assert (own["run_id"], own["spec"]["name"], own["status"]) == (row.run_id, f"s{n}", "ok")
        assert row.findings["medium"] == 1 and row.tokens_in == own["totals"]["tokens_in"] > 0
        assert row.cost_usd == own["totals"]["cost_usd"] > 0
    assert result.totals.cost_usd == pytest.approx(sum(row.cost_usd or 0 for row in result.rows))


def test_a_failing_run_is_its_row_and_the_sweep_exits_with_the_code_that_ranks_first(
    fake: FakeProvider, tmp_path: Path
) -> None:
    for n in range(1, 7):
        fake.script(f"r{n}", valid_answer)
        fake.script(f"p{n}", valid_answer)

    def down(call: Call) -> str:
        raise ProviderUnavailable("connection refused", model=call.model)

    fake.script("r3", down)
    specs = [
        fake_spec(tmp_path, 1),  # ok
        fake_spec(tmp_path, 2, "fail_on: low\n", priced=False),  # a medium finding: the quality gate
        fake_spec(tmp_path, 3),  # its only model is down: provider failure
        fake_spec(tmp_path, 4, "limits: {concurency: 2}\n"),  # a typo: a spec error
        fake_spec(tmp_path, 5, "policy: {allow_countries: [FR]}\n"),  # no model left: the policy
        fake_spec(tmp_path, 6),  # its checkpoint cannot be opened (below): fails before any call
    ]
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database, " * 512)
    options = sweep_options(tmp_path / "out", checkpoint="memory")

    def options_for(item: SweepItem) -> Any:
        chosen = options(item)
        if item.index == 6:
            chosen.checkpoint = str(tmp_path / "garbage.sqlite")
        return chosen

    result = run_sweep(prepared(specs), options_for, concurrency=3)
    rows = result.rows
    assert [(r.status, r.exit_code) for r in rows] == [
        ("ok", 0),
        ("quality_gate", 1),
        ("provider_failure", 3),
        ("error", 2),
        ("error", 5),
        ("error", 3),
    ]
    assert rows[3].run_id is None and "concurency" in (rows[3].error or "") and rows[3].hint
    assert "allow_countries" in (rows[4].error or "") and "checkpoint" in (rows[5].error or "")
    listed = ledger.get_run(rows[5].run_id or "")
    assert listed is not None and listed.status == "error"
    for row in rows[:3]:  # each finished run wrote its own result, whatever the others did
        own = result_of(row)
        assert (own["run_id"], own["status"], own["exit_code"]) == (row.run_id, row.status, row.exit_code)
    assert result.exit_code == ExitStatus.USAGE  # 2 ranks first (README: 2, 5, 130/143, 4, 3, 1, 0)
    # the totals are the rows' sums
    totals = result.totals
    assert totals.runs == 6 and totals.by_status == {"ok": 1, "quality_gate": 1, "provider_failure": 1, "error": 3}
    assert totals.tokens_in == sum(r.tokens_in for r in rows) > 0
    assert totals.tokens_out == sum(r.tokens_out for r in rows) > 0
    assert totals.findings == {s: sum(r.findings[s] for r in rows) for s in totals.findings}
    assert totals.findings["medium"] == 2
    assert rows[0].cost_usd and rows[1].cost_usd is None and totals.cost_usd is None  # one run's cost is unknown


def test_exit_precedence_is_the_runs() -> None:
    order = ExitStatus.precedence()
    assert ranked_exit([]) == ExitStatus.OK
    for codes in permutations([0, 1, 3, 4, 130, 5, 2], 3):
        assert ranked_exit(codes) == min((ExitStatus(c) for c in codes), key=order.index)
    assert ranked_exit([0, 1, 4, 3]) == ExitStatus.BUDGET_EXCEEDED and ranked_exit([143, 130]) == 130


def test_verified_patches_are_counted_per_run(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("right", lambda call: diagnosis(RIGHT_FIX))
    fake.script("wrong", lambda call: diagnosis(WRONG_FIX))
    spec = AGENTIC_SPEC.replace("reflections: 1", "reflections: 0").replace("sandbox: required", "sandbox: preferred")
    right = agentic_project(tmp_path, spec.replace("[fake/debugger, fake/second]", "fake/right"))
    wrong = right.with_name("wrong.yaml")
    wrong.write_text(right.read_text().replace("fake/right", "fake/wrong"))
    result = sweep(prepared([right, wrong]), tmp_path / "out", concurrency=2)
    # the wrong fix is not verified: verify.require (on with checks) makes that run the quality gate
    rows = [(r.status, r.patches_verified, r.patches_total) for r in result.rows]
    assert rows == [("ok", 1, 1), ("quality_gate", 0, 1)]
    for row in result.rows:
        verdicts = [v for s in result_of(row)["subtasks"] for v in s["verification"] if v["final"]]
        assert row.patches_verified == sum(v["verdict"] == "verified" for v in verdicts)
    assert (result.totals.patches_verified, result.totals.patches_total) == (1, 2)


def test_ctrl_c_stops_every_run_checkpointed_and_each_resumes(fake: FakeProvider, tmp_path: Path) -> None:
    fake.delay_s = 0.2
    sent: list[int] = []

    def review(call: Call) -> str:
        if not sent and sum(fake.in_flight.values()) >= 2:  # both runs are mid-call: press Ctrl-C
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return valid_answer(call)

    for n in range(1, 4):
        fake.script(f"r{n}", review)
        fake.script(f"p{n}", valid_answer)
    specs = [fake_spec(tmp_path, n) for n in range(1, 4)]
    result = run_sweep(prepared(specs), sweep_options(tmp_path / "out"), concurrency=2)  # durable checkpoints
    assert sent and result.stopped_by == "SIGINT" and result.exit_code == ExitStatus.INTERRUPTED
    assert [(r.status, r.exit_code) for r in result.rows] == [("interrupted", 130)] * 2 + [("not_started", 130)]
    assert result.rows[2].run_id is None
    for row in result.rows[:2]:
        assert result_of(row)["status"] == "interrupted"
        listed = ledger.get_run(row.run_id or "")
        assert listed is not None and listed.status == "interrupted"
        resumed = resume_workflow(row.run_id or "")
        assert resumed.result.status == "ok" and resumed.run_id == row.run_id
        assert result_of(row)["status"] == "ok"  # written again in the run's own folder


def test_hostile_input_is_bounded_and_names_become_plain_folders(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=f"at most {MAX_RUNS} runs"):
        plan_sweep([f"s{i}.yaml" for i in range(MAX_RUNS + 1)])
    too_many = CliRunner().invoke(main, ["sweep", *(f"s{i}.yaml" for i in range(MAX_RUNS + 1))])
    assert too_many.exit_code == 2 and f"at most {MAX_RUNS} runs" in too_many.output
    odd = tmp_path / "a b\x1b[31m;ünï.yaml"
    odd.write_text("version: 1\n")
    (missing,) = plan_sweep([str(odd)])
    assert missing.label == "01-a_b_31m_n" and isinstance(missing.error, SpecError)  # and not a crash


# ---------------------------------------------------------------- the command, on a loopback server


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({"planner": "canned", "review": "canned"}) as running:
        yield running


def server_spec(folder: Path, url: str, name: str) -> Path:
    workspace = folder / "repo"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "x").write_text("placeholder\n")  # the canned answers name a file 'x' (a schema sample)
    spec = folder / f"{name}.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: {name}
            goal: Review the service.
            workspace: repo
            providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
            tasks:
              - {{role: architecture_review, instruction: review}}
            models: {{planner: api/planner, architecture_review: api/review}}
            limits: {{timeout_s: 30, backoff_s: 0.05, retries: 1}}
            fail_on: none
            """
        )
    )
    return spec


def agrees_with_its_result(row: dict[str, Any]) -> dict[str, Any]:
    own = json.loads(Path(row["result"]).read_text())
    assert (row["run_id"], row["status"], row["exit_code"]) == (own["run_id"], own["status"], own["exit_code"])
    assert (row["spec_name"], row["workspace"]) == (own["spec"]["name"], own["workspace"])
    assert (row["tokens_in"], row["tokens_out"]) == (own["totals"]["tokens_in"], own["totals"]["tokens_out"])
    assert row["cost_usd"] == own["totals"]["cost_usd"]
    findings = [f for s in own["subtasks"] for f in (s["output"] or {}).get("findings", [])]
    assert sum(row["findings"].values()) == len(findings) >= 1
    assert Path(row["result"]).parent == Path(row["outputs"])
    return dict(own)


def test_the_command_sweeps_two_specs_and_one_spec_over_two_workspaces(server: ModelServer, tmp_path: Path) -> None:
    a, b = server_spec(tmp_path, server.url, "alpha"), server_spec(tmp_path, server.url, "beta")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nname: broken\ngoal: g\nlimits: {concurency: 2}\n")
    out = tmp_path / "out"
    done = orchestrator("sweep", a, b, broken, "--output-dir", out, "--json", "--no-cache", timeout=300)
    assert done.returncode == 2, done.stderr  # the spec error ranks first; the other two ran
    summary = json.loads(done.stdout)
    assert summary == json.loads((out / "sweep.json").read_text())
    first, second, bad = summary["rows"]
    assert [r["label"] for r in summary["rows"]] == ["01-alpha", "02-beta", "03-broken"]
    assert agrees_with_its_result(first)["spec"]["name"] == "alpha" and first["outputs"] == str(out / "01-alpha")
    assert agrees_with_its_result(second)["spec"]["name"] == "beta" and first["run_id"] != second["run_id"]
    assert (bad["status"], bad["exit_code"], bad["run_id"]) == ("error", 2, None) and "concurency" in bad["error"]
    assert summary["totals"]["tokens_in"] == first["tokens_in"] + second["tokens_in"] > 0
    assert sum(line.startswith("started ") for line in done.stderr.splitlines()) == 2
    assert sum(line.startswith("finished ") for line in done.stderr.splitlines()) == 2
    assert "error: 03-broken: error (exit 2)" in done.stderr

    places = [tmp_path / "one", tmp_path / "two"]
    for place in places:
        shutil.copytree(tmp_path / "repo", place)
    (places[1] / "y").write_text("more\n")
    over = orchestrator(
        "sweep", a, "--workspace", places[0], "--workspace", places[1], "--output-dir", tmp_path / "ws", timeout=300
    )
    assert over.returncode == 0, over.stderr
    lines = over.stdout.splitlines()
    assert lines[0].split()[:5] == ["run", "spec", "workspace", "run", "id"] and len(lines) == 4
    assert lines[1].startswith("01-alpha-one ") and lines[2].startswith("02-alpha-two ")
    assert lines[3].startswith("total ") and "2 ok" in lines[3]
    swept = json.loads((tmp_path / "ws" / "sweep.json").read_text())
    for row, place in zip(swept["rows"], places, strict=True):
        own = agrees_with_its_result(row)
        assert own["workspace"] == str(place.resolve())  # the operator's workspace replaced the spec's
        assert row["run_id"] in over.stdout
    assert [len(agrees_with_its_result(r)["files"]["included"]) for r in swept["rows"]] == [1, 2]


def test_sigterm_stops_every_run_of_the_command_each_keeping_its_outputs(server: ModelServer, tmp_path: Path) -> None:
    server.fault("hang", model="review", times=2, hang_s=60)  # both reviews hang until the signal
    specs = [server_spec(tmp_path, server.url, name) for name in ("alpha", "beta", "gamma")]
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "orchestrator", "sweep", *map(str, specs), "--output-dir", str(out)]
    process = subprocess.Popen(
        [*argv, "--concurrency", "2", "--json", "--no-cache"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while server.state.in_flight < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.state.in_flight == 2, "both runs should be waiting on their review"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == ExitStatus.TERMINATED, stderr
    summary = json.loads(stdout)
    assert summary["stopped_by"] == "SIGTERM" and summary["exit_code"] == 143
    assert [r["status"] for r in summary["rows"]] == ["interrupted", "interrupted", "not_started"]
    for row in summary["rows"][:2]:  # each stopped run wrote what it had, and can be resumed
        assert json.loads(Path(row["result"]).read_text())["status"] == "interrupted"
        assert f"`orchestrator resume {row['run_id']}` finishes it" in stderr
    assert server.state.requests["review"] == 2  # the third run never started


def test_sweep_help_imports_no_provider_sdk_and_no_langgraph() -> None:
    modules = {m.split(".")[0] for m in modules_imported_by(["sweep", "--help"])}
    assert not modules & {"langgraph", "langchain_core", "langchain_openai", "pydantic", "ray"}
