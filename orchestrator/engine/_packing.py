"""Packing files into a model's context window. Packing never overflows silently: what was
truncated or left out is recorded and shown in the report. Files are fenced as data."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.workspace import SourceFile

if TYPE_CHECKING:
    from orchestrator.engine.state import CallRecord

BLOCK_SEPARATOR = "\n\n"


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
