"""Packing files into a model's context window, in the order of what the call is about
(`_relevance.py`). Packing never overflows silently: each file is packed whole, cut (around the
lines the task is about, else its first lines) or left out, and which, and why, is recorded and
shown in the report. Files are fenced as data."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.engine._relevance import PackItem
from orchestrator.workspace import SourceFile

if TYPE_CHECKING:
    from orchestrator.engine.state import CallRecord

BLOCK_SEPARATOR = "\n\n"
GAP = "  ...|"  # between two windows of a cut file
MISSES = 50  # files in a row that did not fit whole, after which the rest are left out unread
LAST_LINE = "(truncated: lines 100000-100000 not shown)"


def render_file(path: str, text: str, first_line: int = 1) -> str:
    """A fenced, line-numbered listing. Fences mark repository content as data."""
    body = "\n".join(f"{number:>5}| {line}" for number, line in enumerate(text.splitlines(), first_line))
    return f'<file path="{path}">\n{body}\n</file>'


def render_windows(path: str, lines: list[str], windows: list[tuple[int, int]]) -> str:
    """A fenced listing of some windows of a file (1-based, inclusive), numbered as in the file."""
    parts = []
    for start, end in windows:
        parts.append("\n".join(f"{n:>5}| {lines[n - 1]}" for n in range(start, end + 1)))
    return f'<file path="{path}">\n' + f"\n{GAP}\n".join(parts) + "\n</file>"


@dataclass
class PackedContext:
    text: str = ""
    tokens: int = 0
    files: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)  # "path (lines 1-40 of 300)"
    omitted: list[str] = field(default_factory=list)
    packed: list[dict[str, str]] = field(default_factory=list)  # {path, how: whole | cut, why, lines}

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "truncated": self.truncated,
            "omitted": self.omitted,
            "tokens": self.tokens,
            "packed": self.packed,
        }


def pack_files(files: Sequence[SourceFile | PackItem], budget: int, count: Callable[[str], int]) -> PackedContext:
    """Pack files in order within `budget` tokens: each whole when it fits; a file the task is
    about (`PackItem.focus`, every plain `SourceFile`) that does not fit is cut, to half of what is
    left when more such files follow, else to all of it; any other file is whole or left out.
    `tokens` counts the blocks and their separators."""
    items = [f if isinstance(f, PackItem) else PackItem(f, "") for f in files]
    packed = PackedContext()
    blocks: list[str] = []
    separator = count(BLOCK_SEPARATOR)
    misses = 0
    for index, item in enumerate(items):
        source = item.source
        left = budget - packed.tokens - (separator if blocks else 0)
        if misses >= MISSES or left <= 0:
            packed.omitted.append(source.path)
            continue
        block = render_file(source.path, source.text)
        cost = count(block)
        if cost <= left:
            blocks.append(block)
            packed.tokens += cost + (separator if len(blocks) > 1 else 0)
            packed.files.append(source.path)
            packed.packed.append({"path": source.path, "how": "whole", "why": item.reason})
            misses = 0
            continue
        if not item.focus:
            packed.omitted.append(source.path)
            misses += 1
            continue
        more = any(later.focus for later in items[index + 1 :])
        cut = _cut(item, left // 2 if more else left, count) or (_cut(item, left, count) if more else None)
        if cut is None:
            packed.omitted.append(source.path)
            continue
        block, shown = cut
        blocks.append(block)
        packed.tokens += count(block) + (separator if len(blocks) > 1 else 0)
        packed.files.append(source.path)
        total = len(source.text.splitlines())
        packed.truncated.append(f"{source.path} (lines {shown} of {total})")
        packed.packed.append({"path": source.path, "how": "cut", "why": item.reason, "lines": f"{shown} of {total}"})
    packed.text = BLOCK_SEPARATOR.join(blocks)
    return packed


def _cut(item: PackItem, budget: int, count: Callable[[str], int]) -> tuple[str, str] | None:
    """The largest listing of the file that fits `budget`: windows around its focus lines when it
    has some, else its first lines; with the lines shown ("1-40", "12-30, 88-120"), or None."""
    lines = item.source.text.splitlines()
    path = item.source.path
    margin = count(LAST_LINE)
    if item.lines:
        radius = _largest(
            len(lines),
            lambda r: count(render_windows(path, lines, _windows(item.lines, r, len(lines)))) + margin <= budget,
        )
        if radius is not None:
            windows = _windows(item.lines, radius, len(lines))
            shown = ", ".join(f"{a}-{b}" for a, b in windows)
            hidden = len(lines) - sum(b - a + 1 for a, b in windows)
            return render_windows(path, lines, windows) + f"\n(cut: {hidden} other lines not shown)", shown
    keep = _largest(len(lines), lambda n: count(render_file(path, "\n".join(lines[:n]))) + margin <= budget)
    if not keep:
        return None
    return render_file(
        path, "\n".join(lines[:keep])
    ) + f"\n(truncated: lines {keep + 1}-{len(lines)} not shown)", f"1-{keep}"


def _windows(spans: list[tuple[int, int]], radius: int, total: int) -> list[tuple[int, int]]:
    """The spans widened by `radius` lines (a quarter of it before: code follows its name),
    clipped to the file and merged where they meet."""
    widened = sorted((max(1, a - radius // 4), min(total, b + radius)) for a, b in spans if 1 <= a <= total)
    merged: list[tuple[int, int]] = []
    for start, end in widened:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _largest(most: int, fits: Callable[[int], bool]) -> int | None:
    """The largest n in 0..most with fits(n) (fits is monotonic), or None when not even 0 fits."""
    if not fits(0):
        return None
    low, high = 0, most
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def digest(results: list[CallRecord], budget_chars: int) -> str:
    """Outputs as compact JSON, each shortened evenly to fit the aggregator's window."""
    items = []
    for r in results:
        item: dict[str, Any] = {"id": r.id, "role": r.role, "model": r.model, "status": r.status, "output": r.output}
        if r.checks:  # whether each proposed diff applies, and git's message
            item["patch_checks"] = [c.model_dump() for c in r.checks]
        kept = [v for v in r.verification if v.final]
        if kept:  # what the project's checks said of its patches
            item["verification"] = [
                {"patch": v.id, "verdict": v.verdict, "checks": {c.name: f"{c.before} -> {c.after}" for c in v.checks}}
                for v in kept
            ]
        items.append(item)
    share = max(200, budget_chars // max(1, len(items)))
    lines = []
    for item in items:
        text = json.dumps(item, ensure_ascii=False)
        lines.append(text if len(text) <= share else text[: share - 20] + " ...(shortened)")
    return "\n".join(lines)
