"""The files a workflow may read: regular UTF-8 text files inside the workspace root, selected by
include/exclude globs. Paths that resolve outside the root (symlinks out) are skipped and reported.
This module is a leaf: it imports nothing else of the orchestrator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MAX_FILE_BYTES = 512_000
ALWAYS_EXCLUDED = (
    ".git/**",
    "**/.git/**",
    ".orchestrator/**",
    "**/.venv/**",
    ".venv/**",
    "**/node_modules/**",
    "**/__pycache__/**",
    "**/*.pyc",
)


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the workspace, POSIX separators
    text: str

    @property
    def lines(self) -> int:
        return self.text.count("\n") + (0 if self.text.endswith("\n") or not self.text else 1)


@dataclass
class FileSet:
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def by_path(self) -> dict[str, SourceFile]:
        return {f.path: f for f in self.files}


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob with `**` (any depth), `*` and `?` (within a path segment) to a regex.
    Runs of `**/` collapse into one: repeated, each would multiply the regex's backtracking."""
    pattern = re.sub(r"(\*\*/)+", "**/", pattern)
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(path: str, pattern: str) -> bool:
    return _glob_regex(pattern.removeprefix("./")).match(path) is not None


def collect_files(root: Path, include: Sequence[str], exclude: Sequence[str]) -> FileSet:
    """Every regular text file under `root` matching an include glob and no exclude glob."""
    root = root.resolve()
    result = FileSet()
    excluded = (*ALWAYS_EXCLUDED, *exclude)
    pruned = tuple(p.removesuffix("/**") for p in excluded if p.endswith("/**"))
    for folder, dirs, names in os.walk(root):
        rel_folder = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        dirs[:] = sorted(d for d in dirs if not any(glob_match(prefix + d, p) for p in pruned))
        for name in sorted(names):
            rel = prefix + name
            if not any(glob_match(rel, pattern) for pattern in include):
                continue
            if any(glob_match(rel, pattern) for pattern in excluded):
                continue
            _read_into(result, root, rel)
    result.files.sort(key=lambda f: f.path)
    return result


def _read_into(result: FileSet, root: Path, rel: str) -> None:
    real = (root / rel).resolve()
    if not real.is_relative_to(root):
        result.skipped.append((rel, "resolves outside the workspace"))
    elif not real.is_file():
        return
    elif real.stat().st_size > MAX_FILE_BYTES:
        result.skipped.append((rel, f"larger than {MAX_FILE_BYTES} bytes"))
    else:
        data = real.read_bytes()
        if b"\0" in data:
            result.skipped.append((rel, "binary"))
            return
        try:
            result.files.append(SourceFile(path=rel, text=data.decode("utf-8")))
        except UnicodeDecodeError:
            result.skipped.append((rel, "not UTF-8 text"))
