"""The files a workflow may read, and how they are packed into a model's context window.

Files are read only inside the workspace root: paths that resolve outside it (symlinks out)
are skipped. Packing never overflows silently: what was truncated or left out is recorded and
shown in the report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MAX_FILE_BYTES = 512_000
BLOCK_SEPARATOR = "\n\n"
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
    """Translate a glob with `**` (any depth), `*` and `?` (within a path segment) to a regex."""
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


def render_file(path: str, text: str, first_line: int = 1) -> str:
    """A fenced, line-numbered listing. Fences mark repository content as data."""
    body = "\n".join(f"{number:>5}| {line}" for number, line in enumerate(text.splitlines(), first_line))
    return f'<file path="{path}">\n{body}\n</file>'


@dataclass
class PackedContext:
    text: str = ""
    tokens: int = 0
    files: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)  # "path (lines 1-40 of 300)"
    omitted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "truncated": self.truncated,
            "omitted": self.omitted,
            "tokens": self.tokens,
        }


def pack_files(files: Sequence[SourceFile], budget: int, count: Callable[[str], int]) -> PackedContext:
    """Add whole files while they fit in `budget` tokens; cut the first that does not fit at a
    line boundary; list the rest as omitted. `tokens` counts the blocks and their separators."""
    packed = PackedContext()
    blocks: list[str] = []
    separator = count(BLOCK_SEPARATOR)
    for source in files:
        if packed.truncated or packed.omitted:
            packed.omitted.append(source.path)
            continue
        overhead = separator if blocks else 0
        block = render_file(source.path, source.text)
        cost = count(block) + overhead
        if packed.tokens + cost <= budget:
            blocks.append(block)
            packed.tokens += cost
            packed.files.append(source.path)
            continue
        lines = source.text.splitlines()
        keep = _fit_lines(source.path, lines, budget - packed.tokens - overhead, count)
        if keep == 0:
            packed.omitted.append(source.path)
            continue
        block = render_file(source.path, "\n".join(lines[:keep]))
        blocks.append(block + f"\n(truncated: lines {keep + 1}-{len(lines)} not shown)")
        packed.tokens += count(blocks[-1]) + overhead
        packed.files.append(source.path)
        packed.truncated.append(f"{source.path} (lines 1-{keep} of {len(lines)})")
    packed.text = BLOCK_SEPARATOR.join(blocks)
    return packed


def _fit_lines(path: str, lines: list[str], budget: int, count: Callable[[str], int]) -> int:
    """The largest number of leading lines whose listing fits in `budget` (binary search)."""
    low, high = 0, len(lines)
    margin = count("(truncated: lines 100000-100000 not shown)")
    while low < high:
        mid = (low + high + 1) // 2
        if count(render_file(path, "\n".join(lines[:mid]))) + margin <= budget:
            low = mid
        else:
            high = mid - 1
    return low
