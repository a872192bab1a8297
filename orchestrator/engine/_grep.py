"""The one line search of the run: the `grep` tool and the packing's search for the symbols a task
names use it, so a model's tool and its prompt find the same lines. Patterns are the `regex`
module's, whose backtracking is bounded by a timeout: a model's pattern cannot hang the run."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from orchestrator.workspace import SourceFile

LINE_CHARS = 2000  # the most of one line searched


def grep_lines(
    files: Iterable[SourceFile], pattern: Any, deadline: float, limit: int
) -> list[tuple[SourceFile, int, str]]:
    """The lines (file, 1-based number, text) matching a compiled `regex` pattern, at most `limit`
    of them; TimeoutError once `deadline` (a `time.perf_counter()` value) has passed."""
    found: list[tuple[SourceFile, int, str]] = []
    for source in files:
        for number, line in enumerate(source.text.splitlines(), 1):
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("the search took too long")
            if pattern.search(line[:LINE_CHARS], timeout=left) is not None:
                found.append((source, number, line))
                if len(found) >= limit:
                    return found
    return found
