"""The embedded model, for real, on a busy machine: the quickstart passes while two busy loops
keep both cores loaded, and says where its time went; a call stuck in its prompt's evaluation
past `timeout_s` is stopped and reported as a `timeout` (the model is not cooled down for it).

Behaviour, never time: nothing here asserts how long anything took."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.providers._client import workers
from orchestrator.spec import load_spec
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator

pytestmark = [pytest.mark.integration, pytest.mark.embedded]
REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart" / "spec.yaml"


@contextmanager
def busy_loops(count: int = 2) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` processes that each keep a core busy until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield loops
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def test_the_quickstart_passes_on_a_loaded_machine_and_says_it_waited(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with busy_loops(2) as loops:
        done = orchestrator("run", QUICKSTART, "--output-dir", out, "--no-cache", cwd=REPO, timeout=2400)
        assert all(loop.poll() is None for loop in loops), "the load lasted the whole run"
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: the quality gate, not a failure
    result = json.loads((out / "result.json").read_text())
    subtasks = result["subtasks"]
    assert [s["status"] for s in subtasks] == ["ok"] * 4 and result["aggregate"]["status"] == "ok"
    hops = [hop for call in [*subtasks, result["aggregate"]] for hop in call["fallbacks"]]
    assert not [hop for hop in hops if hop["error_kind"] == "cooldown"]
    # where the time went: every call's split is recorded, and the run waited for its model
    assert all(s["served_s"] > 0 for s in subtasks)
    assert result["totals"]["queued_s"] > 0 and result["totals"]["served_s"] > 0
    report = (out / "report.md").read_text()
    assert "## Waiting" in report and "for local/smollm2, then" in report
    spans = [span for s in subtasks for span in s["timing"]["spans"]]
    assert any(span["kind"] == "wait" and span["name"] == "queue" for span in spans)


def test_a_call_stuck_in_prompt_evaluation_is_stopped_as_a_timeout(tmp_path: Path) -> None:
    # a file long enough that evaluating the prompt takes seconds; unique, so no cache holds it
    marker = uuid.uuid4().hex
    lines = [f"def step_{i}_{marker[:8]}(value):\n    return value * {i} + {len(marker)}\n" for i in range(2000)]
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "big.py").write_text("".join(lines))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: stuck\ngoal: Find the bug in big.py.\nworkspace: ws\n"
        "tasks: [{role: debug, instruction: Find the bug., files: [big.py]}]\n"
        "models: {planner: local/smollm2, debug: local/smollm2}\n"
        "roles: {debug: {tools: []}}\n"
        "limits: {timeout_s: 0.5, retries: 0, map_tokens: 0}\nfail_on: none\n"
    )
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", cache=False))
    result = outcome.result.model_dump(mode="json")
    (debug,) = result["subtasks"]
    assert debug["status"] == "failed"
    (hop,) = debug["fallbacks"]
    assert hop["error_kind"] == "timeout" and "timed out (prompt)" in hop["message"]
    assert hop["tokens"] == 0 and hop["served_s"] >= 0.5
    assert result["aggregate"]["fallbacks"][0]["error_kind"] != "cooldown"
    # the worker stopped evaluating: it confirmed the stop, or was killed for not stopping
    (worker,) = [w for w in workers() if w.options["path"].endswith(".gguf")]
    deadline = time.monotonic() + 60
    while worker.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not worker.pending
    if worker.alive:
        before = cpu_seconds(worker.pid)
        time.sleep(1.0)
        assert cpu_seconds(worker.pid) - before < 0.3, "the worker kept computing after the timeout"


def test_the_engine_serves_cached_turns_first_and_new_prompts_beside_generating_calls_in_small_chunks() -> None:
    from orchestrator.providers._engine import PROMPT_BESIDE
    from orchestrator.testing import embedded_engine

    engine = embedded_engine(parallel=2)
    system = "You review Python code. " + "def add(a, b):\n    return a - b\n" * 40
    first = [{"role": "system", "content": system}, {"role": "user", "content": "Name the function."}]

    def call(ident: int, messages: list[dict[str, str]]) -> dict[str, object]:
        return {"id": ident, "messages": messages, "max_tokens": 4}

    engine.submit(call(1, first))
    while not engine.idle():
        engine.step()
    admitted: list[int] = []
    engine.on_start = admitted.append
    engine.submit(call(2, [{"role": "system", "content": "Another job. " * 50}, {"role": "user", "content": "Hi."}]))
    turn = [*first, {"role": "assistant", "content": "add"}, {"role": "user", "content": "And its bug?"}]
    engine.submit(call(3, turn))
    while not engine.idle():
        engine.step()
    assert admitted == [3, 2]  # the next turn reuses its cached prefix: cheap, and served first
    # a long prompt admitted while a call generates is evaluated a little at a time beside it
    engine.clear_cache()
    generating = engine.submit({**call(4, [{"role": "user", "content": "Count to fifty."}]), "max_tokens": 40})
    while generating.feed is None:
        engine.step()
    engine.submit(call(5, [{"role": "user", "content": "Summarise: " + "the cat sat on the mat. " * 150}]))
    beside = []  # the batches decoded while call 4 was generating
    while not engine.idle():
        alongside = generating in engine.active
        engine.step()
        if alongside:
            beside.append(engine.batch.n_tokens)
    assert beside and max(beside) <= 1 + PROMPT_BESIDE and generating.result()["completion_tokens"] > 0
    engine.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
