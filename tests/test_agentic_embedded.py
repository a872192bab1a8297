"""Integration: the embedded model (SmolLM2-135M through llama.cpp) runs a role's tool loop for
real, one grammar-constrained action per turn: every action parses, the loop ends within its
bounds, the tool calls are in result.json; and the recorded run replays with no model call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.process import orchestrator

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

REPO = Path(__file__).resolve().parent.parent
SPEC = """
version: 1
name: embedded-tools
goal: Find why test_new_store_is_empty fails.
workspace: project
include: ["**/*.py"]
models: {default: local/smollm2}
checks:
  tests: {run: "python -m pytest -q -p no:cacheprovider", timeout_s: 120}
verify: {reflections: 0, require: false}  # the tool loop is under test, not the fix
roles:
  debug: {tool_choice: required, max_turns: 3}
limits: {timeout_s: 600, max_output_tokens: 384}
graph: tools-only
"""
GRAPH = """
version: 1
name: tools-only
nodes:
  debug:
    kind: role
    role: debug
    instruction: "Find why test_new_store_is_empty fails."
    files: [inventory/store.py, tests/test_store.py]
edges:
  - [START, debug]
  - [debug, END]
"""


def test_the_embedded_model_runs_the_tool_loop_and_its_recording_replays(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "quickstart" / "project", tmp_path / "project")
    (tmp_path / "tools-only.yaml").write_text(GRAPH.lstrip())
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.lstrip().replace("graph: tools-only", "graph: tools-only.yaml"))
    done = orchestrator(
        "run", spec, "--output-dir", tmp_path / "a", "--record", tmp_path / "rec", "--no-cache", timeout=1800
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    (debug,) = result["subtasks"]
    assert debug["status"] == "ok" and debug["model"] == "local/smollm2"
    assert not debug["fallbacks"]  # every action parsed and validated (a grammar per turn)
    assert 2 <= debug["turns"] <= 3  # the first turn must call a tool; the third must answer
    assert debug["tool_calls"] and debug["tool_calls"][0]["turn"] == 1
    for call in debug["tool_calls"]:
        assert call["tool"] in {"list_files", "read_file", "grep", "run_check"} and call["status"] in {"ok", "refused"}
        assert call["model"] == "local/smollm2" and call["duration_ms"] >= 0
    assert len(debug["tool_calls"]) <= debug["turns"] - 1  # one action a turn, the last one the answer

    replayed = orchestrator("run", spec, "--output-dir", tmp_path / "b", "--replay", tmp_path / "rec", timeout=600)
    assert replayed.returncode == 0, replayed.stderr
    again = json.loads((tmp_path / "b" / "result.json").read_text())
    assert again["egress"]["in_process"] == []  # no model was loaded: every answer came from the recording
    timeless = [{k: v for k, v in c.items() if k not in ("started_ms", "duration_ms")} for c in debug["tool_calls"]]
    replayed_calls = again["subtasks"][0]["tool_calls"]
    assert [{k: v for k, v in c.items() if k not in ("started_ms", "duration_ms")} for c in replayed_calls] == timeless
    assert again["subtasks"][0]["output"] == debug["output"] and again["subtasks"][0]["turns"] == debug["turns"]
