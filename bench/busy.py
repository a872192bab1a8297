"""(10) The embedded model on a busy machine: the quickstart (`orchestrator run`, a fresh process,
the result cache off) on this machine as it is, then while two busy loops keep both cores loaded.

- wall time under load / quiet (and whether both runs passed: exit 0 or 1, every subtask ok);
- the share of the loaded run's model time spent waiting (the worker's queue, calls behind others)
  against being served (prompt evaluation and generation), from its result.json, and the same
  share for the quiet run.

One run each (`make bench`): the figures are ratios of two runs on the same machine minutes
apart. `--quick` runs one subtask with a short answer instead of the whole quickstart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.child import fmt

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart" / "spec.yaml"
QUICK = """version: 1
name: busy-quick
goal: Find why test_new_store_is_empty fails.
workspace: project
tasks: [{role: debug, instruction: Find why test_new_store_is_empty fails., files: [inventory/store.py]}]
models: {planner: local/smollm2, debug: local/smollm2}
roles: {debug: {tools: []}}
limits: {max_output_tokens: 96}
fail_on: none
"""


def quickstart(folder: Path, spec: Path, loaded: bool) -> dict[str, Any]:
    out = folder / ("loaded" if loaded else "quiet")
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if loaded else 0)]
    environment = {**os.environ, "CI": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(spec), "--output-dir", str(out), "--no-cache"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=environment,
            timeout=3600,
            check=False,
        )
        wall = time.perf_counter() - started
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    result = json.loads((out / "result.json").read_text())
    calls = [*result["subtasks"], result["aggregate"]]
    passed = done.returncode in (0, 1) and all(call and call["status"] == "ok" for call in calls)
    totals = result["totals"]
    return {"wall": wall, "passed": passed, "queued": totals["queued_s"], "served": totals["served_s"]}


def share(run: dict[str, Any]) -> float:
    return float(run["queued"]) / max(float(run["queued"]) + float(run["served"]), 1e-9)


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        spec = QUICKSTART
        if quick:
            shutil.copytree(QUICKSTART.parent / "project", folder / "project")
            spec = folder / "spec.yaml"
            spec.write_text(QUICK)
        quiet = quickstart(folder, spec, loaded=False)
        loaded = quickstart(folder, spec, loaded=True)
    what = "one subtask" if quick else "the quickstart"
    return {
        "rows": [
            {
                "figure": f"{what}: wall time with both cores loaded / quiet",
                "ratio": round(loaded["wall"] / quiet["wall"], 2),
                "absolute": f"{fmt(loaded['wall'], ' s', 0)} vs {fmt(quiet['wall'], ' s', 0)}; "
                f"passed: loaded {loaded['passed']}, quiet {quiet['passed']}",
                "met": loaded["passed"] and quiet["passed"],
            },
            {
                "figure": f"{what} with both cores loaded: share of model time waiting (vs being served)",
                "ratio": round(share(loaded), 2),
                "absolute": f"waited {fmt(loaded['queued'], ' s', 0)}, served {fmt(loaded['served'], ' s', 0)}",
            },
            {
                "figure": f"{what} quiet: share of model time waiting (vs being served)",
                "ratio": max(round(share(quiet), 3), 0.001),
                "absolute": f"waited {fmt(quiet['queued'], ' s', 0)}, served {fmt(quiet['served'], ' s', 0)}",
            },
        ]
    }
