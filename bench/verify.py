"""Verification costs, as ratios to a baseline measured side by side in the same run:

- sandbox start: a trivial check (`true`, then `python -c pass`) run in the bubblewrap sandbox
  against the same check run unsandboxed, alternating, per check process (its `duration_ms`);
- verification overhead per patch: N patches of the quickstart verified by its real test command
  (the baseline once, each patch on a copy of its own, in the sandbox), at `check_concurrency` 1
  and 2, against running the same test command directly, unsandboxed, in a copy of the project;
- the embedded model's tool-loop turns on the quickstart, from its recording.

Public API only: `verify_patches` is what `orchestrator verify` and a run use.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.child import fmt, median
from orchestrator import load_spec, verify_patches

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "examples" / "quickstart" / "project"
RECORDED = REPO / "tests" / "data" / "quickstart-replay" / "result.json"
STORE = (PROJECT / "inventory" / "store.py").read_text()
OLD = "        # BUG (on purpose): a mutable default argument is shared by every Store\n        self.items = items\n"


def _diff(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}")
    return "".join(lines)


def fix(variant: int) -> str:
    """The quickstart's right fix, each variant a little different (so no two patches are equal)."""
    new = f"        # fixed ({variant})\n        self.items = {{}} if items is None else items\n"
    return _diff("inventory/store.py", STORE, STORE.replace("items={}", "items=None").replace(OLD, new))


def comment(variant: int) -> str:
    """A patch that adds one comment line (for the trivial checks)."""
    before = (PROJECT / "inventory" / "__init__.py").read_text()
    return _diff("inventory/__init__.py", before, f"# {variant}\n{before}")


def spec_file(folder: Path, checks: dict[str, str], sandbox: str, concurrency: int) -> Path:
    lines = [
        "version: 1",
        "name: bench-verify",
        "goal: measure verification",
        "workspace: project",
        "checks:",
        *[f"  {name}: {{run: {json.dumps(command)}, timeout_s: 300}}" for name, command in checks.items()],
        f"verify: {{sandbox: {sandbox}}}",
        f"limits: {{check_concurrency: {concurrency}}}",
    ]
    path = folder / f"spec-{sandbox}-{concurrency}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def check_ms(spec: Path, patches: list[str]) -> list[int]:
    verdicts, _ = verify_patches(load_spec(spec), patches)
    return [c.duration_ms for v in verdicts for c in v.checks]


def sandbox_start(folder: Path, command: str, rounds: int, per_round: int) -> dict[str, Any]:
    checks = {"trivial": command}
    boxed, bare = [], []
    for index in range(rounds):  # alternating, so both see the same machine load
        patches = [comment(index * per_round + n) for n in range(per_round)]
        boxed += check_ms(spec_file(folder, checks, "required", 1), patches)
        bare += check_ms(spec_file(folder, checks, "off", 1), patches)
    ratio = median(boxed) / max(median(bare), 1)
    return {
        "figure": f"sandbox start: `{command}` per check, sandboxed / unsandboxed",
        "ratio": round(ratio, 2),
        "absolute": f"{fmt(median(boxed), ' ms', 0)} vs {fmt(median(bare), ' ms', 0)} (median of {len(boxed)})",
        "met": None,
    }


def bare_test_ms(folder: Path) -> float:
    """The quickstart's tests run directly in a copy, unsandboxed: what a developer would run."""
    copy = folder / "bare"
    if not copy.exists():
        shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    subprocess.run(command, cwd=copy, capture_output=True, check=False)
    return (time.perf_counter() - started) * 1000


def overhead(folder: Path, patches: int, reps: int) -> list[dict[str, Any]]:
    checks = {"tests": f"{sys.executable} -m pytest -q -p no:cacheprovider"}
    walls: dict[int, list[float]] = {1: [], 2: []}
    per_patch, check_runs, bare, baselines = [], [], [], []
    for _ in range(reps):  # alternating the two concurrencies and the bare run: the same load for each
        for concurrency in (1, 2):
            spec = load_spec(spec_file(folder, checks, "required", concurrency))
            started = time.perf_counter()
            verdicts, report = verify_patches(spec, [fix(n) for n in range(patches)])
            walls[concurrency].append(time.perf_counter() - started)
            assert all(v.verdict == "verified" for v in verdicts), [v.reason for v in verdicts]
            per_patch += [v.duration_ms for v in verdicts]
            check_runs += [c.duration_ms for v in verdicts for c in v.checks]
            baselines.append(len(report.baselines))
            bare.append(bare_test_ms(folder))
    return [
        {
            "figure": "a patch's verification (copy, git apply, sandboxed tests) / a bare test run",
            "ratio": round(median(per_patch) / median(bare), 2),
            "absolute": f"{fmt(median(per_patch), ' ms', 0)} vs {fmt(median(bare), ' ms', 0)} "
            f"(median of {len(per_patch)}); of which the sandboxed test run {fmt(median(check_runs), ' ms', 0)}",
            "met": None,
        },
        {
            "figure": f"check runs for {patches} patches: the patches' and the baseline's",
            "ratio": round((patches + median(baselines)) / patches, 2),
            "absolute": f"{patches} + {median(baselines):g} baseline (once per run, whatever the patches)",
            "met": None,
        },
        {
            "figure": f"{patches} patches: wall at check_concurrency 2 / at 1 ({os.cpu_count()} cores)",
            "ratio": round(median(walls[2]) / median(walls[1]), 2),
            "absolute": f"{fmt(median(walls[2]), ' s', 2)} vs {fmt(median(walls[1]), ' s', 2)}",
            "met": None,
        },
    ]


def embedded_turns() -> dict[str, Any]:
    """The tool-loop turns the embedded model took per subtask of the recorded quickstart."""
    result = json.loads(RECORDED.read_text())
    turns = {s["id"]: s.get("turns", 0) for s in result["subtasks"]}
    tools = sum(len(s.get("tool_calls", [])) for s in result["subtasks"])
    bounds = [b["bound"] for s in result["subtasks"] for b in s.get("bounds", [])]
    return {
        "figure": "embedded model: tool-loop turns per quickstart subtask (recorded run)",
        "ratio": round(sum(turns.values()) / max(len(turns), 1), 2),
        "absolute": f"turns {turns}; {tools} tool calls; bounds reached: {bounds or 'none'}",
        "met": None,
    }


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        folder = Path(tmp)
        shutil.copytree(PROJECT, folder / "project", ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        rounds, per_round = (1, 2) if quick else (3, 4)
        rows = [
            sandbox_start(folder, "true", rounds, per_round),
            sandbox_start(folder, f"{sys.executable} -c pass", rounds, per_round),
            *overhead(folder, 2 if quick else 4, 1 if quick else 3),
            embedded_turns(),
        ]
    return {"rows": rows}
