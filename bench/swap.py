"""(3) Model-swap-aware scheduling: a host that keeps one model loaded (the Ollama-compatible
test server with a load delay) serves 12 subtasks over 4 models; loads and wall time with the
plan's order (naive) against the orchestrator's schedule (`max_loaded_models: 1`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fake import install
from tests.servers.model_server import ModelServer

MODELS = ["a", "b", "c", "d"]


def write_spec(folder: Path, url: str, scheduled: bool, per_model: int) -> Path:
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "app.py").write_text("x = 1\n")
    roles = "".join(f"  r{m}: {{output: text, prompt: 'do $instruction'}}\n" for m in MODELS)
    models = ", ".join(f"r{m}: ollama/{m}" for m in MODELS)
    tasks = "".join(f"  - {{role: r{m}, instruction: t{i}}}\n" for i in range(per_model) for m in MODELS)
    host = "max_concurrency: 1" + (", max_loaded_models: 1" if scheduled else "")
    spec = folder / "spec.yaml"
    spec.write_text(
        f"version: 1\nname: swap\ngoal: g\nworkspace: ws\n"
        f"providers: {{ollama: {{base_url: '{url}', {host}}}, bench: {{kind: bench}}}}\n"
        f"roles:\n{roles}models: {{planner: bench/0, {models}}}\ntasks:\n{tasks}fail_on: none\n"
    )
    return spec


def measure(scheduled: bool, load_delay_s: float, per_model: int) -> tuple[int, float]:
    from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow

    install()
    with (
        ModelServer({m: "canned" for m in MODELS}, load_delay_s=load_delay_s) as host,
        tempfile.TemporaryDirectory() as d,
    ):
        workflow = prepare_workflow(load_spec(write_spec(Path(d), host.url, scheduled, per_model)))
        started = time.perf_counter()
        outcome = run_workflow(workflow, RunOptions(write=False, checkpoint="off", cache=False, ledger=False))
        wall = time.perf_counter() - started
        assert outcome.exit_code == 0
        return host.state.loads, wall


def run(quick: bool) -> dict[str, Any]:
    load_delay, per_model = (0.05, 2) if quick else (0.25, 3)
    naive_loads, naive_wall = measure(False, load_delay, per_model)
    loads, wall = measure(True, load_delay, per_model)
    n = per_model * len(MODELS)
    return {
        "rows": [
            {
                "figure": f"model loads, {n} subtasks over {len(MODELS)} models (scheduled / naive)",
                "ratio": round(loads / naive_loads, 2),
                "absolute": f"{loads} vs naive {naive_loads}",
                "met": loads == len(MODELS),
            },
            {
                "figure": f"wall time with a {load_delay:.2f} s load (scheduled / naive)",
                "ratio": round(wall / naive_wall, 2),
                "absolute": f"{wall:.2f} s vs naive {naive_wall:.2f} s",
                "met": None,
            },
        ]
    }
