"""Running one measurement in a fresh Python process (so runs do not share caches, garbage or
imports), and medians."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any


def child(module: str, *args: str, timeout_s: float = 1800) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, check=False, timeout=timeout_s
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float, unit: str = "", digits: int = 3) -> str:
    return f"{value:.{digits}f}{unit}"
