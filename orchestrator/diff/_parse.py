"""Reading git's output: `diff --name-status -z` entries, and `diff` patch text split per file
into hunks (their positions and the shape of their lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from orchestrator.diff._records import FileStatus, Hunk

STATUS: dict[str, FileStatus] = {
    "A": "added",
    "M": "modified",
    "R": "renamed",
    "C": "copied",
    "D": "deleted",
    "T": "type_changed",
}
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Entry:
    """One line of `git diff --name-status -z`."""

    status: FileStatus
    path: str
    old_path: str | None = None


@dataclass
class Section:
    """One file's part of a patch: its hunks, its text (for prompts), whether it is binary."""

    text: str
    binary: bool = False
    hunks: list[Hunk] = field(default_factory=list)


def name_status(raw: bytes) -> list[Entry]:
    """Entries of `--name-status -z` (unknown statuses are read as modified)."""
    parts = raw.decode("utf-8", "replace").split("\0")
    entries: list[Entry] = []
    index = 0
    while index < len(parts) and parts[index]:
        letter = parts[index][:1]
        status = STATUS.get(letter, "modified")
        if letter in ("R", "C") and index + 2 < len(parts):
            entries.append(Entry(status, parts[index + 2], parts[index + 1]))
            index += 3
        elif index + 1 < len(parts):
            entries.append(Entry(status, parts[index + 1]))
            index += 2
        else:
            break
    return entries


def split_patch(text: str) -> list[str]:
    """The patch cut into one part per file (each starts with `diff --git`)."""
    parts = re.split(r"(?m)^(?=diff --git )", text)
    return [part for part in parts if part.startswith("diff --git ")]


def read_section(text: str) -> Section:
    """A file's hunks from its part of a patch; a part cut short keeps the hunks it has whole."""
    section = Section(text=text)
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith(("Binary files ", "GIT binary patch")):
            section.binary = True
        match = _HUNK.match(line)
        if not match:
            index += 1
            continue
        old_start, old_count = int(match[1]), int(match[2] if match[2] is not None else 1)
        new_start, new_count = int(match[3]), int(match[4] if match[4] is not None else 1)
        ops: list[str] = []
        index += 1
        seen_old = seen_new = 0
        while index < len(lines) and (seen_old < old_count or seen_new < new_count):
            body = lines[index]
            op = body[:1]
            if op == "\\":  # "\ No newline at end of file"
                index += 1
                continue
            if op not in (" ", "+", "-"):
                break
            ops.append(op)
            seen_old += op != "+"
            seen_new += op != "-"
            index += 1
        if seen_old == old_count and seen_new == new_count:
            section.hunks.append(
                Hunk(
                    old_start=old_start, old_count=old_count, new_start=new_start, new_count=new_count, ops="".join(ops)
                )
            )
    return section
