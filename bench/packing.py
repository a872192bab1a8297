"""(11) Context by relevance: what choosing a call's files costs, on a generated repository of
2,000 Python files (200 with --quick) whose bug is in the file that sorts last:

- map build: the repository map's index (every file parsed with `ast`, who defines what), cold
  (a fresh process: nothing cached), per 1,000 files, against reading the files from disk;
- packing: one call's files in relevance order, packed into an 8k window, and the map of the rest
  ranked and outlined in its share, per 1,000 files, against the same baseline;
- the index again in the same process (every file's symbols cached by content).

Each figure is the median of the runs, each run in a fresh Python process."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.child import child, fmt, median

BUDGET = 6000  # tokens for the repository in an 8k window with 1k of answer and the prompt


def generate(root: Path, files: int) -> None:
    """`files` modules that use each other's helpers, a test file, and the buggy module last."""
    (root / "tests").mkdir(parents=True)
    for i in range(files - 2):
        uses = "".join(f"from mod_{j:04d} import helper_{j:04d}_0\n" for j in (i // 2, i // 3) if j != i)
        body = [f'"""Area {i}."""\n', uses]
        for n in range(8):
            body.append(f"\n\ndef helper_{i:04d}_{n}(value, scale=2):\n    return value * scale + {n}\n")
        body.append(f"\n\nclass Area{i}:\n    def total(self, items):\n        return sum(items)\n")
        (root / f"mod_{i:04d}.py").write_text("".join(body))
    (root / "zz_last.py").write_text("def last_total(prices):\n    return sum(prices[1:])\n")
    (root / "tests" / "test_zz_last.py").write_text("from zz_last import last_total\n\n\ndef test_it():\n    pass\n")


def measure(root: str) -> dict[str, float]:
    """One cold measurement (run in a child process)."""
    from orchestrator.testing import packed_context, repository_index, workspace_files

    started = time.perf_counter()
    files = workspace_files(Path(root))
    read = time.perf_counter() - started
    started = time.perf_counter()
    index = repository_index(files)
    build = time.perf_counter() - started
    started = time.perf_counter()
    packed, outline = packed_context(files, "Find why tests/test_zz_last.py fails.", BUDGET, index)
    pack = time.perf_counter() - started
    assert packed.files[:2] == ["tests/test_zz_last.py", "zz_last.py"] and outline
    started = time.perf_counter()
    repository_index(files)
    warm = time.perf_counter() - started
    return {"files": len(files), "read": read, "build": build, "pack": pack, "warm": warm}


def run(quick: bool) -> dict[str, Any]:
    count, runs = (200, 1) if quick else (2000, 3)
    with tempfile.TemporaryDirectory() as folder:
        generate(Path(folder), count)
        samples = [child("bench.packing", folder) for _ in range(runs)]
    figures = {key: median([s[key] for s in samples]) for key in ("read", "build", "pack", "warm")}
    per = 1000 / samples[0]["files"]
    read = figures["read"]
    return {
        "rows": [
            {
                "figure": f"map build per 1,000 files, cold ({count} files) / reading them",
                "ratio": round(figures["build"] / read, 2),
                "absolute": f"{fmt(figures['build'] * per, ' s')} per 1,000 files; reading {fmt(read * per, ' s')}",
            },
            {
                "figure": "one call's packing and map per 1,000 files / reading them",
                "ratio": round(figures["pack"] / read, 2),
                "absolute": f"{fmt(figures['pack'] * per, ' s')} per 1,000 files",
            },
            {
                "figure": "map build again in the same process (cached by content) / cold",
                "ratio": round(figures["warm"] / figures["build"], 3),
                "absolute": f"{fmt(figures['warm'] * per, ' s')} per 1,000 files",
            },
        ]
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
