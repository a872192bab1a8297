"""(4) CLI start-up: `orchestrator --help` and `orchestrator validate` against importing
langchain_openai, each a fresh process, medians."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.child import median

REPO = Path(__file__).resolve().parent.parent


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def run(quick: bool) -> dict[str, Any]:
    repeats = 1 if quick else 7
    python = sys.executable
    commands = {
        "python": [python, "-c", "pass"],
        "import langchain_openai": [python, "-c", "import langchain_openai"],
        "orchestrator --help": [python, "-m", "orchestrator", "--help"],
        "orchestrator validate": [python, "-m", "orchestrator", "validate", "examples/quickstart/spec.yaml"],
    }
    times = {name: median([timed(cmd) for _ in range(repeats)]) for name, cmd in commands.items()}
    baseline = times["import langchain_openai"]
    rows = []
    for name in ("orchestrator --help", "orchestrator validate"):
        rows.append(
            {
                "figure": f"{name} / import langchain_openai",
                "ratio": round(times[name] / baseline, 2),
                "absolute": (
                    f"{times[name] * 1000:.0f} ms vs {baseline * 1000:.0f} ms "
                    f"(bare python {times['python'] * 1000:.0f} ms)"
                ),
                "met": times[name] / baseline < 0.5 if name == "orchestrator validate" else None,
            }
        )
    return {"rows": rows}
