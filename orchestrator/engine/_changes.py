"""The changes under review, as one small piece of a prompt: when a run reviews a diff
(`diff_base`), the planner and every role get the changed files' hunks, numbered as the files
are, fenced as data and bounded (`CHANGES_CHARS`); the files themselves are packed as usual and
the rest of the repository is one tool call away. Without a diff scope this adds nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.diff import ChangedFile, DiffScope
from orchestrator.engine.context import RunContext
from orchestrator.workspace import SourceFile

CHANGES_CHARS = 8000  # of hunks in one prompt (the changed files are packed whole besides)
LISTED_FILES = 60
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def review_files(ctx: RunContext) -> list[SourceFile]:
    """The files a subtask that names none is given: the changed ones when the run reviews a diff."""
    if ctx.diff is None:
        return ctx.files.files
    changed = set(ctx.diff.paths)
    return [f for f in ctx.files.files if f.path in changed]


def changes_for(ctx: RunContext, paths: Sequence[str]) -> str:
    """The prompt piece for a call that is given `paths` (their hunks first), or ""."""
    if ctx.diff is None:
        return ""
    return changes_section(ctx.diff, paths)


def changes_section(scope: DiffScope, paths: Sequence[str], limit: int = CHANGES_CHARS) -> str:
    report = scope.report
    head = (
        f"Changes under review: the diff of HEAD ({report.head_sha[:12]}) against {report.base_ref} "
        f"(merge base {report.base_sha[:12]}). Review what these changes do; say when a finding is on a "
        "line they do not touch. Lines are numbered as in the files; read any other file with your tools."
    )
    listing = [f"- {_describe(f)}" for f in report.files[:LISTED_FILES]]
    if len(report.files) > LISTED_FILES:
        listing.append(f"- ... and {len(report.files) - LISTED_FILES} more changed files")
    order = [p for p in paths if p in scope.patches] + [p for p in scope.patches if p not in paths]
    blocks: list[str] = []
    used, left_out = 0, 0
    for path in order:
        block = f'<diff path="{path}">\n{numbered(scope.patches[path])}\n</diff>'
        if used + len(block) > limit:
            left_out += 1
            continue
        blocks.append(block)
        used += len(block)
    if left_out:
        blocks.append(f"({left_out} changed files' hunks are not shown here: read those files)")
    return "\n".join([head, *listing, "", *blocks]).strip()


def _describe(changed: ChangedFile) -> str:
    moved = f", from {changed.old_path}" if changed.old_path else ""
    if not changed.reviewed:
        return f"{changed.path} ({changed.status}{moved}; not reviewed: {changed.reason})"
    return f"{changed.path} ({changed.status}{moved}): changed lines {_ranges(sorted(changed.added())) or 'none'}"


def _ranges(lines: list[int]) -> str:
    spans: list[list[int]] = []
    for line in lines:
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def numbered(patch: str) -> str:
    """A file's hunks with the new file's line numbers: `  12 +| added`, `  13  | context`,
    `     -| removed` (git's file headers left out)."""
    out: list[str] = []
    line = 0
    in_hunk = False
    for text in patch.splitlines():
        match = _HUNK.match(text)
        if match:
            line, in_hunk = int(match[1]), True
            out.append(text)
            continue
        if not in_hunk or text[:1] not in (" ", "+", "-"):
            continue
        op, body = text[0], text[1:]
        if op == "-":
            out.append(f"{'':>5} -| {body}")
        else:
            out.append(f"{line:>5} {'+' if op == '+' else ' '}| {body}")
            line += 1
    return "\n".join(out)
