"""Running the real `orchestrator` command in a subprocess, as users and CI do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def orchestrator(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator ARGS` with CI=1 (plain progress lines), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "1", **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )
