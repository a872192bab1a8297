"""A smoke test of the benchmarks' plumbing, with tiny sizes and no time asserted: `python -m bench
--quick --only bare` runs a section end to end (the loopback model server, bare and ours in
processes of their own, the event-loop probe) and prints its table; `--only` keeps the other
sections' figures; every section has a target; and the figures that can miss are computed so they
can (overlapping model calls counted once, a missed target shown as missed). The full benchmarks
run with `make bench` (docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.__main__ import ORDER, PARTS, SECTIONS, TARGETS, render
from bench.model import merged_seconds
from tests.process import run

REPO = Path(__file__).resolve().parent.parent


def test_a_section_runs_end_to_end_and_prints_its_table(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    earlier = {"swap": {"target": "t", "rows": [{"figure": "kept", "ratio": 1.0, "absolute": "x", "met": True}]}}
    output.write_text(json.dumps(earlier))
    # its own process group: the bench's children (servers, measured processes) go with it at a timeout
    argv = [sys.executable, "-m", "bench", "--quick", "--only", "bare", "--output", str(output)]
    done = run(argv, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["swap"] == earlier["swap"]  # --only updates just its own section
    rows = results["bare"]["rows"]
    figures = [row["figure"] for row in rows]
    for mode in ("in memory", "durable (SQLite)"):
        for figure in ("CPU per call", "wall time of a run", "peak RSS", "event loop blocked per node"):
            assert f"{figure}, N=3, {mode}" in figures
    for row in rows:
        assert row["absolute"] and row["target"]
        assert row["ratio"] is None or (isinstance(row["ratio"], float | int) and row["ratio"] >= 0)
    blocked = next(row for row in rows if row["figure"].startswith("event loop blocked per node, N=3, durable"))
    assert blocked["met"] in (True, False)  # a target: met or missed, never blank
    table = done.stdout.splitlines()
    assert table[0] == "| benchmark | figure | ratio | absolute | target | met |"
    assert sum(line.startswith("| bare | CPU per call, N=3") for line in table) == 2


def test_every_section_has_a_target_and_a_place_in_the_table() -> None:
    shown = set(ORDER)
    for name in SECTIONS:
        assert name in TARGETS and name in shown
        for part in PARTS.get(name, []):
            assert part in TARGETS and part in shown


def test_a_missed_target_reads_as_missed() -> None:
    results = {
        "x": {
            "target": "<= 1",
            "rows": [
                {"figure": "a", "ratio": 2.0, "absolute": "2 vs 1", "met": False},
                {"figure": "b", "ratio": None, "absolute": "0 vs 0", "met": None, "target": "reported"},
            ],
        }
    }
    lines = render(results, ["x"]).splitlines()
    assert lines[2] == "| x | a | 2.0 | 2 vs 1 | <= 1 | no |"
    assert lines[3] == "| x | b | n/a | 0 vs 0 | reported |  |"


def test_time_inside_model_calls_counts_overlapping_calls_once() -> None:
    # four calls at once for 1 s, then one for 1 s, within a 3 s run: 2 s inside model calls, not 5
    calls = [(0.0, 1.0)] * 4 + [(2.0, 3.0)]
    assert merged_seconds(calls) == 2.0
    assert merged_seconds([(0.0, 2.0), (1.0, 1.5), (1.8, 3.0)]) == 3.0
    assert merged_seconds([]) == 0.0
