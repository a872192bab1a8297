"""The words of a review: a finding's comment, a suggestion's text and verdict, the review's body,
and the hidden markers a re-run finds its earlier comments by. Models' text is hostile: it is made
prose (no HTML, so no forged marker; no image; no block of the review's own) and mentions are
broken, so that a model cannot notify anyone; code stays exactly as written only inside the
suggestion block."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from orchestrator.outputs._escape import cell, prose

if TYPE_CHECKING:
    from orchestrator.checks import PatchVerdict
    from orchestrator.diff import DiffReport
    from orchestrator.engine.state import CallRecord
    from orchestrator.outputs.result import RunResult
    from orchestrator.outputs.review._plan import Comment
    from orchestrator.spec.kinds import Finding

MARK = "sovereign-orchestrator"
REVIEW_KEY = "review"
MARKER = re.compile(r"<!-- sovereign-orchestrator:((?:finding|suggestion):[0-9a-f]{16}|review) -->")
MAX_BODY = 60_000  # GitHub takes 65,536 characters in a body
LISTED = 40
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")


def mark(key: str) -> str:
    """The hidden marker of a comment (or of the review's body: key `review`)."""
    return f"<!-- {MARK}:{key} -->"


def marker_key(body: str) -> str | None:
    """The key of the marker a comment body ends with (None: not one of ours). The last one
    counts: ours closes every body, and a suggestion block (a model's code) could hold another."""
    found = MARKER.findall(body or "")
    return str(found[-1]) if found else None


def quiet(text: object) -> str:
    """A model's text as review prose: no HTML or images, no block of its own, no @mention."""
    return _MENTION.sub("@\u200b", prose(text))


def comment_text(text: str, key: str) -> str:
    return f"{text}\n\n{mark(key)}"


def finding_text(finding: Finding, sub: CallRecord, prefix: str, short: bool) -> str:
    """A finding as a comment (or, `short`, as one line of the review's body)."""
    where = f"`{cell(prefix + finding.file)}" + (f":{finding.line}`" if finding.line else "`")
    if short:
        return f"**{finding.severity.upper()}** {where} {_one_line(finding.title)}: {_one_line(finding.detail, 300)}"
    parts = [f"**{finding.severity.upper()}** · {quiet(finding.title)}"]
    if finding.detail.strip():
        parts.append(quiet(finding.detail))
    if finding.suggestion.strip():
        parts.append(f"Suggestion: {quiet(finding.suggestion)}")
    parts.append(f"<sub>{cell(sub.role)} · {cell(sub.model or '-')} · subtask {cell(sub.id)}</sub>")
    return "\n\n".join(parts)


def suggestion_parts(
    verdict: PatchVerdict, sub: CallRecord, rationale: str, part: str, sandbox: str, key: str
) -> tuple[str, str]:
    """(the text before the suggestion block, the footer after it) of a verified fix."""
    head = f"**Verified fix** `{cell(verdict.id)}`{part} from {cell(sub.model or '-')}"
    text = f"{head}: {quiet(rationale)}" if rationale.strip() else head
    passed = ", ".join(f"`{cell(c.name)}` {c.before} → {c.after}" for c in verdict.checks) or "no check"
    where = "in a bubblewrap sandbox" if sandbox == "bubblewrap" else "without a sandbox"
    footer = f"Verdict: **{verdict.verdict}** by the project's checks ({passed}), run {where}.\n\n{mark(key)}"
    return text, footer


def body_text(
    result: RunResult,
    report: DiffReport,
    comments: list[Comment],
    outside: list[str],
    described: list[str],
    event: str,
) -> str:
    """The review's body: what was reviewed, what stayed out of the diff, what was not suggested."""
    gate = "the quality gate fails" if event == "REQUEST_CHANGES" else "the quality gate passes"
    reviewed = report.reviewed()
    findings = sum(1 for c in comments if c.kind == "finding")
    suggestions = sum(1 for c in comments if c.kind == "suggestion")
    lines = [
        mark(REVIEW_KEY),
        f"### Sovereign Orchestrator review: {cell(result.spec.name)} ({gate}, worst finding: "
        f"{result.max_severity or 'none'}, fail on {result.fail_on})",
        "",
        f"{len(reviewed)} changed file(s) reviewed against `{cell(report.base_ref)}` (merge base "
        f"`{report.base_sha[:12]}`, head `{report.head_sha[:12]}`): {findings} comment(s) on the diff, "
        f"{suggestions} verified suggestion(s).",
    ]
    _section(lines, "Findings outside the diff (not commentable here; all findings are in the SARIF report)", outside)
    _section(lines, "Patches not offered as suggestions", described)
    skipped = [
        f"`{cell(report.prefix + f.path)}` ({f.status}"
        + (f" from `{cell(f.old_path)}`" if f.old_path else "")
        + f"): {cell(f.reason)}"
        for f in report.files
        if not f.reviewed
    ]
    _section(lines, "Changed files not reviewed", skipped)
    summary = (result.aggregate.output or {}).get("summary") if result.aggregate else None
    if summary:
        lines += ["", "#### Summary", "", quiet(summary)]
    lines += ["", f"<sub>run {cell(result.run_id)} · {result.status} (exit {result.exit_code})</sub>"]
    text = "\n".join(lines)
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 40].rsplit("\n", 1)[0] + "\n\n(cut: too long)"


def _section(lines: list[str], title: str, items: list[str]) -> None:
    if not items:
        return
    lines += ["", f"#### {title}", ""]
    lines += [f"- {item}" for item in items[:LISTED]]
    if len(items) > LISTED:
        lines.append(f"- ... and {len(items) - LISTED} more")


def _one_line(text: str, limit: int = 160) -> str:
    flat = quiet(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
