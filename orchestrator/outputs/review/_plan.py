"""A review of a diff-scoped run, before it is written for a forge: which findings become comments
(those on lines of the diff; the rest go in the review's body, and all stay in SARIF), which
patches become suggestions (verified ones whose every span is on lines of the diff; any other
verdict never is, and the body says why), and the review's event (REQUEST_CHANGES when the
quality gate fails). Every comment carries a hidden marker with a key that stays the same from
one run to the next, so a re-run updates it instead of adding another."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.checks import PatchVerdict
from orchestrator.diff import DiffReport, PatchPlace, Span
from orchestrator.engine.state import CallRecord
from orchestrator.errors import SpecError
from orchestrator.outputs._escape import cell
from orchestrator.outputs.result import RunResult
from orchestrator.outputs.review._text import body_text, comment_text, finding_text, suggestion_parts
from orchestrator.spec.kinds import Finding

MAX_COMMENTS = 50  # more would be noise; the rest are listed in the body

Became = Literal["comment", "suggestion", "body: outside the diff", "body: not suggested", "body: over the limit"]


@dataclass(frozen=True)
class Comment:
    """One comment on a line (or lines) of the diff's new side."""

    key: str  # finding:HEX or suggestion:HEX
    kind: Literal["finding", "suggestion"]
    path: str  # in the repository
    old_path: str  # the file's path before the change (GitLab positions name both)
    line: int
    start_line: int | None  # the first line of a range (None: one line)
    old_line: int | None  # the old side's number when `line` is a context line (GitLab)
    text: str  # the comment before any suggestion block
    replacement: list[str] | None = None  # a suggestion: the lines that replace start_line..line
    footer: str = ""  # after the suggestion block: the verdict and the checks that passed


@dataclass(frozen=True)
class Row:
    """What became of one finding or patch (the step summary and report.html show these)."""

    item: str  # "finding" or "patch"
    label: str
    where: str
    became: Became
    why: str = ""


@dataclass
class Review:
    commit: str
    base_sha: str
    start_sha: str
    event: Literal["COMMENT", "REQUEST_CHANGES"]
    body: str
    comments: list[Comment]
    rows: list[Row]


def build_review(result: RunResult) -> Review:
    """The review of a run that reviewed a diff (SpecError when it did not)."""
    report = result.diff
    if report is None:
        raise SpecError(
            "a review (github-review, gitlab-review) needs a run that reviewed a diff: set diff_base, "
            "pass --diff-base REF, or run in a CI pull-request job"
        )
    draft = _Draft(result, report)
    draft.findings()
    draft.patches()
    comments = _unique(draft.comments)
    for extra in comments[MAX_COMMENTS:]:
        draft.outside.append(f"`{extra.path}:{extra.line}`: past the {MAX_COMMENTS} comments a review posts")
        draft.rows.append(Row(extra.kind, extra.key, f"{extra.path}:{extra.line}", "body: over the limit"))
    comments = comments[:MAX_COMMENTS]
    event: Literal["COMMENT", "REQUEST_CHANGES"] = "REQUEST_CHANGES" if result.status == "quality_gate" else "COMMENT"
    body = body_text(result, report, comments, draft.outside, draft.described, event)
    return Review(report.head_sha, report.base_sha, report.start_sha, event, body, comments, draft.rows)


@dataclass
class _Draft:
    """The review as it is sorted out: comments, and what goes in the body instead."""

    result: RunResult
    report: DiffReport
    comments: list[Comment] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    described: list[str] = field(default_factory=list)

    def findings(self) -> None:
        """A comment for a finding on a line of the diff; a line of the body for any other."""
        by_id = {s.id: s for s in self.result.verdicts()}
        for place in self.report.findings:
            sub = by_id.get(place.subtask)
            found = sub.findings() if sub is not None else []
            if sub is None or place.index >= len(found):
                continue
            finding = found[place.index]
            where = f"{finding.file}:{finding.line}" if finding.line else finding.file
            label = f"{finding.severity}: {finding.title}"
            if place.in_diff and finding.line is not None:
                self.comments.append(_finding_comment(self.report, sub, finding, finding.line))
                self.rows.append(Row("finding", label, where, "comment"))
            else:
                self.outside.append(finding_text(finding, sub, self.report.prefix, short=True))
                self.rows.append(Row("finding", label, where, "body: outside the diff"))

    def patches(self) -> None:
        """Suggestions of the verified patches on lines of the diff; the others described."""
        by_id = {s.id: s for s in self.result.verdicts()}
        verdicts = {v.id: v for s in self.result.verdicts() for v in s.verification if v.final}
        verification = self.result.verification
        sandbox = verification.sandbox.runner if verification is not None else "none"
        for place in self.report.patches:
            verdict = verdicts.get(place.patch)
            sub = by_id.get(place.subtask)
            where = ", ".join(f"{s.path}:{s.start_line}-{s.line}" for s in place.spans) or "-"
            why = _why_not(place, verdict)
            if why or sub is None or verdict is None:
                why = why or "its subtask is not in the result"
                self.described.append(f"`{place.patch}` ({cell(sub.model if sub else '-')}): {why}")
                self.rows.append(Row("patch", place.patch, where, "body: not suggested", why))
                continue
            for number, span in enumerate(place.spans, 1):
                part = f" (part {number} of {len(place.spans)})" if len(place.spans) > 1 else ""
                self.comments.append(_suggestion(self.report, sub, verdict, span, part, sandbox))
            self.rows.append(Row("patch", place.patch, where, "suggestion"))


def _why_not(place: PatchPlace, verdict: PatchVerdict | None) -> str:
    """Why a patch is not a suggestion ("" when it is one): only a verified fix on lines of the diff."""
    if verdict is None:
        return "not verified (no check judged it: the spec has no `checks`, or it was not run)"
    if verdict.verdict != "verified":
        failing = ", ".join(f"`{c.name}` {c.before} → {c.after}" for c in verdict.checks if c.after != "pass")
        detail = failing or verdict.reason or "the checks did not pass with it"
        return f"{verdict.verdict}: {detail}; only a fix the checks verified is offered as a suggestion"
    if not place.in_diff:
        return f"verified, but {place.reason}: apply it with `orchestrator apply RUN_ID --patch {place.patch}`"
    return ""


def _finding_comment(report: DiffReport, sub: CallRecord, finding: Finding, line: int) -> Comment:
    path = report.prefix + finding.file
    key = _key("finding", path, str(line), finding.title.strip().lower())
    text = comment_text(finding_text(finding, sub, report.prefix, short=False), key)
    return Comment(
        key, "finding", path, _old_path(report, finding.file), line, None, _old_line(report, finding.file, line), text
    )


def _suggestion(
    report: DiffReport, sub: CallRecord, verdict: PatchVerdict, span: Span, part: str, sandbox: str
) -> Comment:
    path = report.prefix + span.path
    key = _key("suggestion", path, str(span.start_line), str(span.line), "\n".join(span.replacement))
    rationale = next((p.rationale for i, p in enumerate(sub.patches(), 1) if f"{sub.id}-{i}" == verdict.id), "")
    text, footer = suggestion_parts(verdict, sub, rationale, part, sandbox, key)
    start = span.start_line if span.start_line != span.line else None
    old_line = _old_line(report, span.path, span.line)
    return Comment(
        key,
        "suggestion",
        path,
        _old_path(report, span.path),
        span.line,
        start,
        old_line,
        text,
        list(span.replacement),
        footer,
    )


def _old_path(report: DiffReport, path: str) -> str:
    changed = report.file(path)
    return report.prefix + (changed.old_path if changed is not None and changed.old_path else path)


def _old_line(report: DiffReport, path: str, line: int) -> int | None:
    changed = report.file(path)
    hunk = changed.hunk_of(line) if changed is not None else None
    return hunk.old_line_of(line) if hunk is not None else None


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{kind}:{digest}"


def _unique(comments: list[Comment]) -> list[Comment]:
    """One comment per key (two subtasks reporting the same finding on the same line)."""
    seen: set[str] = set()
    kept = []
    for comment in comments:
        if comment.key not in seen:
            seen.add(comment.key)
            kept.append(comment)
    return kept
