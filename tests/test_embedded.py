"""Integration: the real embedded model (SmolLM2-135M through llama.cpp), end to end.

A 135M model proves the pipeline is real, not that answers are good: these tests assert
structure and behaviour, never wording.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.spec import builtin_roles
from orchestrator.spec.kinds import OUTPUT_MODELS
from tests.process import comparable, orchestrator

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart"
ROLES = {"architecture_review", "refactor", "debug", "arabic_docs"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return orchestrator(*args, timeout=900)


def assert_valid_result(result: dict[str, Any]) -> None:
    kinds = {name: role.output for name, role in builtin_roles().items()}
    for sub in result["subtasks"]:
        assert sub["status"] == "ok", sub.get("error")
        assert sub["model"] == "local/smollm2" and sub["catalog_id"] == "smollm2"
        assert sub["tokens_in"] > 0 and sub["tokens_out"] > 0 and sub["latency_ms"] > 0
        OUTPUT_MODELS[kinds[sub["role"]]].model_validate(sub["output"])  # the validated structure
    aggregate = result["aggregate"]
    assert aggregate["status"] == "ok"
    OUTPUT_MODELS["aggregate"].model_validate(aggregate["output"])


def test_quickstart_runs_every_role_on_the_embedded_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli("run", str(QUICKSTART / "spec.yaml"), "--output-dir", str(out), "--record", str(tmp_path / "rec"))
    assert done.returncode in (0, 1), done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["exit_code"] == done.returncode
    assert {s["role"] for s in result["subtasks"]} == ROLES and len(result["subtasks"]) == 4
    assert result["plan"]["source"] == "spec" and result["plan"]["call"] is None
    checkpoint = result["checkpoint"]  # checkpointed by default, with what it cost
    assert checkpoint["backend"] == "sqlite" and checkpoint["durability"] == "sync"
    assert checkpoint["writes"] >= 3 and checkpoint["ms"] > 0
    assert_valid_result(result)
    # files named in findings and patches are real workspace files (the grammar constrains them)
    included = set(result["files"]["included"])
    for sub in result["subtasks"]:
        for item in (sub["output"].get("findings") or []) + (sub["output"].get("patches") or []):
            assert item["file"] in included
    for patch_check in next(s for s in result["subtasks"] if s["role"] == "refactor")["checks"]:
        assert isinstance(patch_check["valid"], bool) and patch_check["message"]
    report = (out / "report.md").read_text()
    for heading in ("## Summary", "## Plan", *(f"## {role}" for role in ROLES)):
        assert heading in report
    assert list((out / "docs").glob("*.ar.md"))
    assert "ok arabic_docs[t4] local/smollm2" in done.stderr  # plain progress lines when CI is set
    # nothing was written into the workspace
    assert subprocess.run(["git", "status", "--porcelain", str(QUICKSTART / "project")], capture_output=True,
                          text=True, cwd=REPO).stdout == ""  # fmt: skip
    replay_the_recording(tmp_path, result)


def project_copy(tmp_path: Path) -> Path:
    """The quickstart's project beside a test's spec (a workspace stays inside its spec's folder)."""
    return Path(shutil.copytree(QUICKSTART / "project", tmp_path / "project", ignore=shutil.ignore_patterns(".*")))


def test_planner_plans_on_the_embedded_model(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: planned\n"
        "goal: Find why test_new_store_is_empty fails and review the store.\n"
        f"workspace: {project_copy(tmp_path)}\ninclude: ['**/*.py']\nfail_on: none\n"
    )
    done = run_cli("run", str(spec), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    plan = result["plan"]
    assert plan["source"] in ("planner", "fallback")
    assert plan["call"]["model"] == "local/smollm2"  # the planning call really happened
    if plan["source"] == "planner":
        assert {s["role"] for s in plan["subtasks"]} <= ROLES
        assert all(set(s["files"]) <= set(result["files"]["included"]) for s in plan["subtasks"])
    assert [s["id"] for s in result["subtasks"]] == [s["id"] for s in plan["subtasks"]]
    assert_valid_result(result)


def replay_the_recording(tmp_path: Path, recorded: dict[str, Any]) -> None:
    """The recorded quickstart replays with no model loaded (llama_cpp cannot even be imported)
    and gives the same result.json apart from the fields that measure time."""
    blocker = tmp_path / "block" / "llama_cpp"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('llama_cpp is blocked: a replay must not load the model')\n"
    )
    env = {"PYTHONPATH": str(tmp_path / "block")}
    args = ("run", QUICKSTART / "spec.yaml", "--output-dir", tmp_path / "replayed", "--replay", tmp_path / "rec")
    done = orchestrator(*args, env=env)
    assert done.returncode == recorded["exit_code"], done.stderr
    replayed = json.loads((tmp_path / "replayed" / "result.json").read_text())
    assert comparable(replayed) == comparable(recorded)
    assert replayed["run_id"] != recorded["run_id"]


GRAPH_SPEC = """version: 1
name: graph-{graph}
goal: Find why test_new_store_is_empty fails and fix it.
workspace: {workspace}
include: ['inventory/*.py', 'tests/*.py']
graph: {graph}
fail_on: none
limits: {{max_turns: 2}}
"""


@pytest.mark.parametrize("graph", ["review-only", "architect-editor", "debug-loop", "ensemble-review"])
def test_every_shipped_graph_runs_on_the_embedded_model(graph: str, tmp_path: Path) -> None:
    from orchestrator import RunOptions, run_workflow
    from orchestrator.spec import load_spec
    from orchestrator.workflow import prepare_workflow

    spec = tmp_path / "spec.yaml"
    spec.write_text(GRAPH_SPEC.format(graph=graph, workspace=project_copy(tmp_path)))
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out"))
    result = outcome.result.model_dump(mode="json")
    assert outcome.exit_code == 0, [s.get("error") for s in result["subtasks"]]
    assert result["spec"]["graph"] == graph and result["subtasks"]
    for call in [*result["subtasks"], result["aggregate"]]:
        assert call["status"] == "ok" and call["model"] == "local/smollm2" and call["tokens_out"] > 0
    if graph == "debug-loop":
        assert sum(1 for s in result["subtasks"] if s["node"] == "diagnose") <= 3  # bounded
    if graph == "ensemble-review":
        merge = next(s for s in result["subtasks"] if s["node"] == "merge")
        assert len(merge["proposals"]) == 2 and isinstance(merge["output"]["disagreements"], list)
    assert (tmp_path / "out" / "report.md").read_text().startswith(f"# graph-{graph}")


@pytest.mark.parametrize("example", ["custom-graph", "python-graph"])
def test_graph_examples_run_from_their_spec(example: str, tmp_path: Path) -> None:
    done = run_cli("run", str(REPO / "examples" / example / "spec.yaml"), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["subtasks"] and all(s["status"] == "ok" for s in result["subtasks"])
    assert result["subtasks"][0]["node"] == "review"


def test_counting_tokens_never_waits_for_a_generation() -> None:
    """Packing counts tokens on the event loop while another subtask generates: the count must
    not take the generating model's lock (it uses a vocabulary-only instance of its own)."""
    import threading

    from orchestrator.providers._llama import count_tokens, shared_llama, weights_path

    path = weights_path()
    llama, generating = shared_llama(path)
    text = "def add(a, b):\n    return a - b\n"
    counted: list[int] = []
    with generating:  # as a generation in a worker thread holds it
        counter = threading.Thread(target=lambda: counted.append(count_tokens(path, text)))
        counter.start()
        counter.join(timeout=120)
        assert not counter.is_alive(), "counting waited for the generating model"
    assert counted == [len(llama.tokenize(text.encode("utf-8"), add_bos=False))]  # the model's own count
