"""Patches as rendered diffs (old and new line numbers, additions and removals marked) with
their verdict and check output; diagnoses with their evidence."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.engine.state import CallRecord, PatchCheck
from orchestrator.outputs.html._base import anchor, badge, esc
from orchestrator.outputs.result import RunResult
from orchestrator.spec.kinds import Patch

MAX_DIFF_LINES = 2000
HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
GOOD = {"verified", "valid", "applies", "pass", "passed"}


def render_diff(diff: str) -> str:
    rows = []
    old = new = 0
    lines = diff.splitlines()
    for line in lines[:MAX_DIFF_LINES]:
        left = right = ""
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
            match = HUNK.match(line)
            if match:
                old, new = int(match.group(1)), int(match.group(2))
        elif line.startswith("+"):
            kind, right, new = "add", str(new), new + 1
        elif line.startswith("-"):
            kind, left, old = "del", str(old), old + 1
        elif line.startswith("\\"):
            kind = "meta"
        else:
            kind, left, right, old, new = "ctx", str(old), str(new), old + 1, new + 1
        rows.append(
            f'<tr class="d-{kind}"><td class="ln">{left}</td><td class="ln">{right}</td>'
            f"<td><code>{esc(line) or ' '}</code></td></tr>"
        )
    more = len(lines) - MAX_DIFF_LINES
    if more > 0:
        rows.append(f'<tr class="d-meta"><td></td><td></td><td>… {more} more lines in patches/</td></tr>')
    return f'<table class="diff" dir="ltr">{"".join(rows)}</table>'


def verdict(check: PatchCheck | None) -> tuple[str, str]:
    """The verdict word and its colour class; a check record that carries a `verdict` of its own
    (verified, unverified, not_applied, rejected) speaks for itself."""
    if check is None:
        return "not checked", "muted"
    said: Any = getattr(check, "verdict", None)
    if said:
        return str(said), "good" if str(said) in GOOD else "bad"
    return ("applies", "good") if check.valid else ("does not apply", "bad")


def _check_output(check: PatchCheck | None) -> str:
    if check is None:
        return ""
    parts = [check.message] if check.message else []
    for name in ("output", "before", "after", "log"):  # what richer check records may add
        value = getattr(check, name, None)
        if value:
            parts.append(f"{name}: {value}")
    text = "\n".join(str(p) for p in parts)
    return f'<pre class="checkout" dir="ltr">{esc(text[:4000])}</pre>' if text else ""


def _patch(sub: CallRecord, index: int, patch: Patch, check: PatchCheck | None) -> str:
    word, kind = verdict(check)
    return (
        f'<article class="patch" data-subtask="{esc(sub.id)}"><h3><code>{esc(patch.file)}</code> '
        f"{badge(word, kind)}</h3>"
        f'<p class="muted">from <a href="#{anchor("subtask", sub.id)}">{esc(sub.id)}</a> ({esc(sub.role)}, '
        f"{esc(sub.model or '')}) · patch {index}</p><p>{esc(patch.rationale)}</p>"
        f"{_check_output(check)}{render_diff(patch.diff)}</article>"
    )


def render_patches(result: RunResult) -> str:
    blocks = []
    for sub in result.verdicts():
        checks = list(sub.checks)
        for index, patch in enumerate(sub.patches()):
            blocks.append(_patch(sub, index + 1, patch, checks[index] if index < len(checks) else None))
    return "".join(blocks) or '<p class="muted">No patches were proposed.</p>'


def render_diagnoses(result: RunResult) -> str:
    blocks = []
    for sub in result.verdicts():
        role = result.role(sub.role)
        output = sub.output or {}
        if role is None or role.output != "diagnosis" or not sub.ok:
            continue
        evidence = "".join(f"<li>{esc(e)}</li>" for e in output.get("evidence") or []) or "<li>(none given)</li>"
        fix = "a fix is proposed under Patches" if sub.patches() else "no fix proposed"
        blocks.append(
            f'<article class="diagnosis" data-subtask="{esc(sub.id)}"><h3>{esc(sub.id)}: '
            f"{esc(sub.instruction)}</h3><p><strong>Root cause:</strong> {esc(output.get('root_cause'))}</p>"
            f'<p><strong>Evidence:</strong></p><ul>{evidence}</ul><p class="muted">{esc(fix)}</p></article>'
        )
    return "".join(blocks)
