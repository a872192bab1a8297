"""Where a proposed patch falls in the files at HEAD: each hunk found by its old lines (as `git
apply` finds it, near the line its header names), reduced to the lines it really changes, and
the text that replaces them. A span is what a review's suggestion block replaces; a pure
insertion is anchored on the line before it (the first line, at the top of a file)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.diff._records import Span

_FILE = re.compile(r"^\+\+\+ (?:b/)?(.+?)\s*$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@")


@dataclass
class _Hunk:
    path: str
    old_start: int
    old: list[str]
    new: list[str]
    ops: list[tuple[str, str]]  # (' ' | '-' | '+', the line's text), in order


class Unplaceable(ValueError):
    """The patch cannot be placed in the files (a new file, a hunk whose lines are not there)."""


def place_patch(diff: str, texts: Mapping[str, str]) -> list[Span]:
    """The spans a unified diff replaces in `texts` (path -> the file at HEAD). Raises Unplaceable."""
    hunks = _hunks(diff)
    if not hunks:
        raise Unplaceable("no hunk in the patch")
    spans: list[Span] = []
    lines_of = {path: text.splitlines() for path, text in texts.items()}
    after: dict[str, int] = {}
    for hunk in hunks:
        lines = lines_of.get(hunk.path)
        if lines is None:
            raise Unplaceable(f"{hunk.path} is not a file the review has")
        if not hunk.old:
            raise Unplaceable(f"{hunk.path}: a hunk with no line to anchor on (a new file?)")
        at = _find(lines, hunk.old, hunk.old_start - 1, after.get(hunk.path, 0))
        if at is None:
            raise Unplaceable(f"{hunk.path}: the lines a hunk changes are not in the file at HEAD")
        after[hunk.path] = at + len(hunk.old)
        spans += _spans(hunk, at, lines)
    return spans


def _spans(hunk: _Hunk, at: int, lines: list[str]) -> list[Span]:
    """Each run of changed lines of a hunk (context lines separate runs): the old lines it replaces
    (1-based, inclusive; `at` is where the hunk's first old line is, 0-based) and their replacement."""
    spans: list[Span] = []
    old_index = at
    removed: list[str] = []
    added: list[str] = []
    first = at
    for op, text in [*hunk.ops, (" ", None)]:
        if op == " ":
            if removed or added:
                spans.append(_span(hunk.path, first, removed, added, lines))
                removed, added = [], []
            old_index += 1
            first = old_index
        elif op == "-":
            removed.append(text or "")
            old_index += 1
        else:
            added.append(text or "")
    return spans


def _span(path: str, first: int, removed: list[str], added: list[str], lines: list[str]) -> Span:
    """`removed` starts at line `first` + 1; a pure insertion is anchored on the line before it."""
    if removed:
        return Span(path=path, start_line=first + 1, line=first + len(removed), replacement=added)
    if first > 0:
        return Span(path=path, start_line=first, line=first, replacement=[lines[first - 1], *added])
    return Span(path=path, start_line=1, line=1, replacement=[*added, lines[0]])


def _find(lines: list[str], block: list[str], near: int, start: int) -> int | None:
    """Where `block` occurs in `lines` at or after `start`, nearest to `near` (0-based)."""
    found = [i for i in range(start, len(lines) - len(block) + 1) if lines[i : i + len(block)] == block]
    return min(found, key=lambda i: abs(i - near)) if found else None


def _hunks(diff: str) -> list[_Hunk]:
    """The hunks of a unified diff, each read for as many lines as its header counts (as git
    apply reads them, so that a removed line starting with `--` is not taken for a header)."""
    hunks: list[_Hunk] = []
    path = ""
    lines = diff.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if found := _FILE.match(line):
            path = found[1]
            if path == "/dev/null":
                raise Unplaceable("the patch deletes a file")
            continue
        match = _HUNK.match(line)
        if not match or not path:
            continue
        old_count = int(match[2]) if match[2] is not None else 1
        new_count = int(match[3]) if match[3] is not None else 1
        hunk = _Hunk(path=path, old_start=int(match[1]), old=[], new=[], ops=[])
        while index < len(lines) and (len(hunk.old) < old_count or len(hunk.new) < new_count):
            # an empty line is an empty context line (git apply reads it so too)
            body = lines[index] or " "
            if body.startswith("\\"):
                index += 1
                continue
            if body[:1] not in (" ", "+", "-"):
                break
            if body[0] != "+":
                hunk.old.append(body[1:])
            if body[0] != "-":
                hunk.new.append(body[1:])
            hunk.ops.append((body[0], body[1:]))
            index += 1
        hunks.append(hunk)
    return hunks
