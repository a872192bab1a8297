"""The benchmark suite runs end to end with tiny sizes, so it never rots. No time is asserted:
only that every figure of docs/benchmarks.md is produced, with its ratio and absolute numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration  # it runs the embedded model once


def test_the_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(output.read_text())
    names = ("overhead", "fanout", "fanout_http", "swap", "startup", "real_model", "embedded", "memory", "verify")
    names += ("executor", "packing", "busy")  # --quick: the local executor only (a Ray cluster takes 8-11 s to start)
    assert set(results) >= set(names)
    for name in names:
        rows = results[name]["rows"]
        assert rows and results[name]["target"]
        for row in rows:
            assert isinstance(row["ratio"], float | int) and row["ratio"] > 0 and row["absolute"]
    assert "| overhead | ms per subtask" in done.stdout  # the table
    loads = results["swap"]["rows"][0]
    assert loads["absolute"].startswith("4 vs naive 8")  # counted, not timed: the schedule groups models
